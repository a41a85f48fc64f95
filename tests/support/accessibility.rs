//! Accessibility checks in the Chromium tests: every page a test screenshots
//! (`chromium::shoot`) and every page a test names to [`assert_accessible`] is checked
//! by axe-core against WCAG 2.0 and 2.1, levels A and AA, at desktop (1280 px) and phone
//! (390 px) width, each in the light and the dark colour scheme (the stylesheet follows
//! `prefers-color-scheme`, set through DevTools). One criterion axe-core does not test
//! is checked beside it: a text field's boundary stands out at 3:1 (WCAG 1.4.11). Any
//! violation fails the test, listing each one: its rule id, impact, help text and the
//! failing nodes' CSS selectors with what is wrong with each.
//!
//! axe-core is pinned in `tests/support/axe/` (`package.json`, `package-lock.json`);
//! `scripts/test` installs it there with `npm ci` (into `node_modules/`, ignored by
//! git). It is put into the page with WebDriver's Execute Script, which Chromium runs
//! through DevTools whatever the page's Content-Security-Policy says (`script-src
//! 'none'` on every page of ours; `accessibility::the_check_…` shows both), and run
//! with Execute Async Script.

use std::path::PathBuf;
use std::sync::OnceLock;

use fantoccini::Client;
use serde::Deserialize;
use serde_json::{json, Value};

use super::chromium::{resize_to, settle, DESKTOP, WIDTHS};

/// The rules run: WCAG 2.0 and 2.1, levels A and AA.
const TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/// Runs axe on the whole document; answers `{violations}` or `{error}`. The callback
/// WebDriver appends is the last argument; the tags are the first.
const RUN_AXE: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, {
  runOnly: { type: 'tag', values: arguments[0] },
  resultTypes: ['violations'],
}).then(
  (r) => done({ violations: r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({ target: n.target, html: n.html, summary: n.failureSummary })),
  })) }),
  (e) => done({ error: String((e && e.stack) || e) }),
);
"#;

/// WCAG 1.4.11 (non-text contrast, AA) for text fields, which axe-core does not check:
/// a field's boundary (its border, or its fill) must stand out from what is around it at
/// 3:1 or more. Answers the fields that fail, with the colours compared.
const FIELD_BOUNDARIES: &str = r#"
const parse = (c) => {
  const m = c.match(/rgba?\(([^)]*)\)/);
  if (!m) return null;
  const [r, g, b, a] = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return { r, g, b, a: a === undefined ? 1 : a };
};
const over = (top, under) => ({
  r: top.r * top.a + under.r * (1 - top.a),
  g: top.g * top.a + under.g * (1 - top.a),
  b: top.b * top.a + under.b * (1 - top.a),
  a: 1,
});
const behind = (el) => {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0) layers.push(c);
    if (c && c.a === 1) break;
  }
  return layers.reduceRight((under, top) => over(top, under), { r: 255, g: 255, b: 255, a: 1 });
};
const lum = ({ r, g, b }) => {
  const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const ratio = (x, y) => {
  const [a, b] = [lum(x), lum(y)].sort((p, q) => q - p);
  return (a + 0.05) / (b + 0.05);
};
const hex = ({ r, g, b }) => '#' + [r, g, b].map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
const fields = document.querySelectorAll(
  'input:not([type=hidden]):not([type=checkbox]):not([type=radio]):not([type=submit]):not([type=button]), select, textarea');
return [...fields].filter((f) => f.checkVisibility()).flatMap((f) => {
  const style = getComputedStyle(f);
  const outside = behind(f.parentElement);
  const fill = over(parse(style.backgroundColor) || { r: 0, g: 0, b: 0, a: 0 }, outside);
  const width = parseFloat(style.borderTopWidth);
  const border = width > 0 ? over(parse(style.borderTopColor), fill) : fill;
  const best = Math.max(ratio(border, outside), ratio(fill, outside));
  if (best >= 3) return [];
  return [{
    target: [f.id ? '#' + f.id : f.tagName.toLowerCase() + '[name="' + f.name + '"]'],
    html: f.outerHTML,
    summary: 'Its border (' + hex(border) + ') and its fill (' + hex(fill) + ') stand out from ' +
      hex(outside) + ' around it at ' + best.toFixed(2) + ':1; expected 3:1 (WCAG 1.4.11)',
  }];
});
"#;

#[derive(Debug, Deserialize)]
struct Violation {
    id: String,
    impact: Option<String>,
    help: String,
    #[serde(rename = "helpUrl")]
    help_url: String,
    nodes: Vec<Failing>,
}

#[derive(Debug, Deserialize)]
struct Failing {
    /// One selector per frame or shadow root on the way to the node.
    target: Vec<Value>,
    html: String,
    summary: Option<String>,
}

/// Checks the current page at desktop and at phone width, each in the light and the
/// dark scheme, and fails the test listing every violation found in any of the four.
/// The window is at desktop size and the page light after.
pub async fn assert_accessible(c: &Client, name: &str) {
    let mut found = Vec::new();
    for (suffix, size) in WIDTHS {
        resize_to(c, size).await;
        found.extend(violations_in_both_schemes(c, name, suffix).await);
    }
    resize_to(c, DESKTOP).await;
    fail_on(&found);
}

/// The reports of [`violations_here`] in the light colour scheme, then in the dark one
/// (`prefers-color-scheme`, which the stylesheet follows); the page is light again after.
pub async fn violations_in_both_schemes(c: &Client, name: &str, width: &str) -> Vec<String> {
    let light = violations_here(c, name, &format!("{width} width, light scheme")).await;
    prefer_color_scheme(c, "dark").await;
    let dark = violations_here(c, name, &format!("{width} width, dark scheme")).await;
    prefer_color_scheme(c, "light").await;
    light.into_iter().chain(dark).collect()
}

/// Fails the test with the reports of [`violations_here`], if there are any.
pub fn fail_on(reports: &[String]) {
    assert!(
        reports.is_empty(),
        "accessibility checks found WCAG 2.1 A/AA violations:\n\n{}",
        reports.join("\n")
    );
}

/// axe-core's violations on the current page as it is now, and the text fields whose
/// boundary is too faint, as one report (`None` when there are none), once the page's
/// transitions have ended. `name` and `at` (such as "phone width, dark scheme") label it.
pub async fn violations_here(c: &Client, name: &str, at: &str) -> Option<String> {
    settle(c).await;
    inject(c).await;
    let answer = c
        .execute_async(RUN_AXE, vec![json!(TAGS)])
        .await
        .unwrap_or_else(|e| panic!("axe.run on {name} ({at}) did not answer: {e}"));
    if let Some(error) = answer.get("error") {
        panic!("axe.run failed on {name} ({at}): {error}");
    }
    let mut violations: Vec<Violation> = serde_json::from_value(answer["violations"].clone())
        .unwrap_or_else(|e| {
            panic!("axe.run on {name} ({at}) answered something unexpected ({e}): {answer}")
        });
    violations.extend(field_boundaries(c).await);
    if violations.is_empty() {
        return None;
    }
    let url = c.current_url().await.map(|u| u.to_string());
    let mut report = format!(
        "{name} at {at} ({}): {} violation{}\n",
        url.unwrap_or_else(|e| format!("URL unknown: {e}")),
        violations.len(),
        if violations.len() == 1 { "" } else { "s" }
    );
    for v in &violations {
        report.push_str(&describe(v));
    }
    Some(report)
}

/// The text fields whose boundary is too faint ([`FIELD_BOUNDARIES`]), as one
/// violation.
async fn field_boundaries(c: &Client) -> Option<Violation> {
    let faint = c
        .execute(FIELD_BOUNDARIES, vec![])
        .await
        .expect("the fields' boundaries measured");
    let nodes: Vec<Failing> = serde_json::from_value(faint.clone())
        .unwrap_or_else(|e| panic!("the fields' boundaries ({e}): {faint}"));
    (!nodes.is_empty()).then(|| Violation {
        id: "non-text-contrast".into(),
        impact: Some("serious".into()),
        help: "Text fields must stand out from their surroundings at 3:1 (not an axe-core rule)"
            .into(),
        help_url: "https://www.w3.org/WAI/WCAG21/Understanding/non-text-contrast.html".into(),
        nodes,
    })
}

/// One violation: rule, impact, help, then each failing node's selector, markup and
/// what axe says is wrong with it.
fn describe(v: &Violation) -> String {
    let impact = v.impact.as_deref().unwrap_or("unknown impact");
    let mut out = format!("- {} ({impact}): {} <{}>\n", v.id, v.help, v.help_url);
    for node in &v.nodes {
        let selector: Vec<String> = node
            .target
            .iter()
            .map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_string))
            .collect();
        let html: String = node.html.chars().take(160).collect();
        out.push_str(&format!("    {}  {html}\n", selector.join(" >>> ")));
        if let Some(summary) = &node.summary {
            for line in summary.lines() {
                out.push_str(&format!("      {line}\n"));
            }
        }
    }
    out
}

/// Puts axe-core into the page unless it is there already (a new page has none).
async fn inject(c: &Client) {
    let present = c
        .execute("return typeof window.axe === 'object'", vec![])
        .await
        .expect("a page to check");
    if present == json!(true) {
        return;
    }
    let loaded = c
        .execute(
            &format!("{}\nreturn typeof window.axe;", axe_source()),
            vec![],
        )
        .await
        .expect("axe-core put into the page");
    assert_eq!(
        loaded,
        json!("object"),
        "axe-core did not load into the page (did its Content-Security-Policy stop it?)"
    );
}

/// axe-core's minified source, read once from where `scripts/test` installs it.
fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = axe_path();
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core is not installed ({}: {e}). Run scripts/test, which installs it \
                 with `npm ci --prefix tests/support/axe` (or run that command yourself).",
                path.display()
            )
        })
    })
}

fn axe_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/axe/node_modules/axe-core/axe.min.js")
}

/// A DevTools command sent through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct DevTools {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Runs the DevTools command `cmd` in the browser's current page; answers its result.
pub async fn devtools(c: &Client, cmd: &'static str, params: Value) -> Value {
    c.issue_cmd(DevTools { cmd, params })
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// Makes the pages of this browser see `prefers-color-scheme: dark` (or `light`).
pub async fn prefer_color_scheme(c: &Client, scheme: &str) {
    let features = json!([{ "name": "prefers-color-scheme", "value": scheme }]);
    c.issue_cmd(DevTools {
        cmd: "Emulation.setEmulatedMedia",
        params: json!({ "features": features }),
    })
    .await
    .expect("Emulation.setEmulatedMedia");
    settle(c).await;
    let applied = c
        .execute(
            "return matchMedia('(prefers-color-scheme: ' + arguments[0] + ')').matches",
            vec![json!(scheme)],
        )
        .await
        .expect("the scheme asked");
    assert_eq!(applied, json!(true), "the page prefers the {scheme} scheme");
}
