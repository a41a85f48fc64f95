//! Accessibility: the check every Chromium test's pages go through
//! (`support::accessibility`: axe-core's WCAG 2.0/2.1 A and AA rules and the text-field
//! contrast check, at desktop and phone width, in both colour schemes). A check that
//! can find nothing proves nothing: a real page broken on purpose must fail it.

use crate::support::accessibility::{fail_on, violations_here};
use crate::support::chromium::{assert_accessible, Chromedriver};
use crate::support::*;

#[tokio::test]
async fn the_check_fails_naming_each_rule_its_impact_and_the_failing_nodes() {
    let driver = Chromedriver::start();
    let app = TestApp::new();
    let base = app.serve().await;
    let c = driver.browser(None).await;
    c.goto(&format!("{base}/login")).await.expect("goto");
    // As it is, the sign-in page passes (both widths, both schemes).
    assert_accessible(&c, "login").await;
    // axe ran although the page's policy (`script-src 'none'`) stops every script of
    // the page's own: WebDriver's scripts are not the page's.
    let inline_ran = c
        .execute(
            "const s = document.createElement('script');
             s.textContent = 'window.inlineRan = true;';
             document.body.append(s);
             return window.inlineRan === true;",
            vec![],
        )
        .await
        .expect("a script element added");
    assert_eq!(inline_ran, serde_json::json!(false), "the CSP is in force");
    // A field without a label, an image without a text, grey on white, and a field
    // whose border all but vanishes.
    c.execute(
        "const field = document.createElement('input');
         field.id = 'unlabelled';
         document.querySelector('form.form').append(field);
         const img = document.createElement('img');
         img.id = 'no-alt';
         img.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';
         document.querySelector('main').append(img);
         document.querySelector('.card-aside').style.color = '#b0b0b0';
         document.getElementById('password').style.borderColor = '#e4e4e4';",
        vec![],
    )
    .await
    .expect("the page broken");
    let report = violations_here(&c, "broken-login", "desktop width")
        .await
        .expect("violations found");
    for expected in [
        "broken-login at desktop width (http",
        "- label (critical): Form elements must have labels",
        "    #unlabelled  <input id=\"unlabelled\">",
        "- image-alt (critical): Images must have alternative text",
        "    #no-alt",
        "- color-contrast (serious): Elements must meet minimum color contrast ratio thresholds",
        "    .card-aside",
        "insufficient color contrast",
        "- non-text-contrast (serious): Text fields must stand out",
        "    #password  <input id=\"password\"",
        "Its border (#e4e4e4) and its fill (#ffffff) stand out from #ffffff around it at 1.27:1",
    ] {
        assert!(
            report.contains(expected),
            "{expected:?} missing from:\n{report}"
        );
    }
    let failed = std::panic::catch_unwind(|| fail_on(std::slice::from_ref(&report)));
    let message = failed.expect_err("a report fails the test");
    let message = message.downcast_ref::<String>().expect("a panic message");
    assert!(message.contains("WCAG 2.1 A/AA violations") && message.contains(&report));
    let _ = c.close().await;
}
