//! The store's behaviour, run against real Redis, a real 3-master Redis Cluster and the
//! embedded store: all three must agree on every rule (TTLs, the index, the cap,
//! limits, codes, rotation). The checks that look at Redis's keys directly (TTLs, what
//! is left behind) read the single Redis only.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::*;
use uuid::Uuid;

/// A refresh without a grace window: the strict rule, where any earlier secret ends
/// the session.
fn strict<'a>(presented: &'a str, successor: &'a str) -> Rotation<'a> {
    Rotation {
        presented_hash: presented,
        successor_hash: successor,
        grace_ms: 0,
    }
}

/// The grace window of the `graced` refreshes below.
const GRACE_MS: i64 = 30_000;

/// A refresh with the default 30 s grace window.
fn graced<'a>(presented: &'a str, successor: &'a str) -> Rotation<'a> {
    Rotation {
        grace_ms: GRACE_MS,
        ..strict(presented, successor)
    }
}

/// A single Redis, whose keys the test can read with one connection.
fn single_redis(store: &Store) -> bool {
    matches!(store, Store::Redis(_)) && !store.is_cluster()
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn redis() {
                    super::$name(super::redis_store(&super::unique("lks"))).await
                }
                #[tokio::test]
                async fn cluster() {
                    super::$name(super::cluster_store(&super::unique("lkc")).await).await
                }
                #[tokio::test]
                async fn memory() {
                    super::$name(super::memory_store(&super::unique("lkm"))).await
                }
            }
        )*
    };
}

on_both_stores!(
    sessions_are_created_checked_listed_and_revoked,
    an_idle_session_ends,
    use_slides_the_idle_timeout,
    a_use_between_writes_only_reads,
    the_absolute_timeout_holds_even_with_activity,
    the_cap_ends_the_least_recently_used,
    revoking_all_but_one_leaves_nothing_behind,
    a_sign_in_checked_against_an_old_password_is_refused,
    concurrent_sign_ins_leave_index_and_hashes_consistent,
    a_burst_gets_exactly_the_quota_through,
    a_burst_on_two_quotas_passes_neither_limit_and_leaves_no_stray_count,
    quotas_are_all_or_nothing_and_a_success_can_be_taken_back,
    reset_codes_are_single_use_and_burn_after_wrong_tries,
    a_verification_is_used_once_by_its_code_or_its_link,
    a_verification_code_burns_after_wrong_tries_and_takes_the_link_with_it,
    every_session_answers_the_accounts_new_email_field_and_a_closed_account_stays_closed,
    refresh_secrets_rotate_and_a_replay_ends_the_session,
    a_logged_out_access_token_is_refused,
    trusted_devices_are_capped_expire_and_end_with_a_new_password,
    authorization_codes_are_used_once_and_a_second_use_ends_both_sessions,
    app_sessions_rotate_their_refresh_secrets_and_list_as_apps,
    a_new_password_ends_the_reset_code,
    one_call_checks_the_session_and_lists_them_all,
    a_closed_account_has_no_live_session_and_no_late_one,
    refresh_history_keeps_five_earlier_secrets,
    a_session_kept_in_use_stays_listed_past_its_first_expiry,
    the_previous_secret_within_the_window_names_the_current_successor,
    two_racing_refreshes_with_one_secret_both_keep_the_session,
    the_previous_secret_after_the_window_ends_the_session,
    a_secret_two_rotations_old_ends_the_session_within_the_window,
    a_retry_naming_another_successor_is_refused_and_ends_nothing,
    without_a_window_the_previous_secret_ends_the_session,
    revoking_a_refresh_token_ends_its_session_and_only_the_current_one_is_active,
    revoking_an_access_token_stops_it_alone,
    how_a_session_signed_in_is_kept_checked_and_listed,
    a_pending_sign_in_ends_after_five_wrong_codes,
    a_pending_sign_in_is_used_once_and_expires,
    app_sessions_are_capped_per_app_and_never_end_browser_or_api_sessions,
    a_passkey_ceremony_is_taken_once_and_expires,
    an_address_change_is_confirmed_once_and_burns_after_wrong_tries,
    an_undo_link_works_once_and_ends_every_other,
);

fn session(user: Uuid, idle_ms: i64, absolute_in_ms: i64) -> NewSession {
    let secret = random_token();
    NewSession {
        user_id: user,
        email: format!("{user}@example.com"),
        sid: sid_for(&secret),
        kind: SessionKind::Browser,
        label: "Firefox on Linux".into(),
        mobile: false,
        ip: "203.0.113.5".into(),
        refresh_hash: None,
        client_id: None,
        amr: Amr::Password,
        idle_ms,
        absolute_expiry_ms: now_ms() + absolute_in_ms,
    }
}

/// A cap of `max` sessions per user (app sessions apart, 10 per app).
fn cap(max: u32) -> SessionCaps {
    SessionCaps {
        per_user: max,
        per_app: 10,
    }
}

async fn create(store: &Store, s: &NewSession, max: u32) -> Vec<String> {
    create_capped(store, s, cap(max)).await
}

async fn create_capped(store: &Store, s: &NewSession, caps: SessionCaps) -> Vec<String> {
    match store
        .create_session(s, caps, 0, now_ms())
        .await
        .expect("store")
    {
        Created::Yes { evicted } => evicted,
        Created::Stale => panic!("unexpected stale"),
    }
}

async fn alive(store: &Store, s: &NewSession) -> bool {
    store
        .touch_session(&s.user_id, &s.sid, None, now_ms())
        .await
        .expect("store")
        .is_some()
}

async fn sessions_are_created_checked_listed_and_revoked(store: Store) {
    let user = Uuid::now_v7();
    let a = session(user, 60_000, 600_000);
    let b = session(user, 60_000, 600_000);
    let before = now_ms();
    create(&store, &a, 50).await;
    let after = now_ms();
    create(&store, &b, 50).await;

    let live = store
        .touch_session(&user, &a.sid, None, now_ms())
        .await
        .unwrap()
        .expect("live");
    assert_eq!(live.email, a.email);
    assert_eq!(live.kind, SessionKind::Browser);
    // When it signed in comes with the check (an app's auth_time), by the read and by
    // the script alike.
    assert!((before..=after).contains(&live.created_ms), "{live:?}");
    let (scripted, _) = store
        .touch_and_list(&user, &a.sid, None, now_ms())
        .await
        .unwrap()
        .expect("live");
    assert_eq!(scripted.created_ms, live.created_ms);

    let listed: HashSet<String> = store
        .list_sessions(&user, now_ms())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(listed, HashSet::from([a.sid.clone(), b.sid.clone()]));

    // Another user's id does not reach these sessions.
    assert!(!store
        .revoke_session(&Uuid::now_v7(), &a.sid, now_ms())
        .await
        .unwrap());
    assert!(alive(&store, &a).await);
    assert!(store
        .touch_session(&Uuid::now_v7(), &a.sid, None, now_ms())
        .await
        .unwrap()
        .is_none());

    assert!(store.revoke_session(&user, &a.sid, now_ms()).await.unwrap());
    assert!(!store.revoke_session(&user, &a.sid, now_ms()).await.unwrap());
    assert!(!alive(&store, &a).await);
    assert!(alive(&store, &b).await);
    assert_eq!(store.list_sessions(&user, now_ms()).await.unwrap().len(), 1);
}

async fn an_idle_session_ends(store: Store) {
    let user = Uuid::now_v7();
    let s = session(user, 1000, 60_000);
    create(&store, &s, 50).await;
    assert!(alive(&store, &s).await);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(!alive(&store, &s).await);
    assert!(store
        .list_sessions(&user, now_ms())
        .await
        .unwrap()
        .is_empty());
}

async fn use_slides_the_idle_timeout(store: Store) {
    let user = Uuid::now_v7();
    let s = session(user, 2000, 60_000);
    create(&store, &s, 50).await;
    // Used every 700 ms for 4.2 s: well past the 2 s idle timeout.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(alive(&store, &s).await);
    }
    if single_redis(&store) {
        let ttl = pttl(&store.key_names().session(&user, &s.sid)).await;
        assert!(
            ttl > 1000 && ttl <= 2000,
            "the hash's TTL slid to the idle timeout: {ttl}"
        );
    }
}

/// A use slides the idle timeout only once `seen` is due a write (a minute, or half
/// the idle timeout when shorter: `store::slide_due`); between writes a use only
/// reads. So a 4 s session used at 1 s still ends 4 s after it started, and one used
/// past 2 s lives on.
async fn a_use_between_writes_only_reads(store: Store) {
    let user = Uuid::now_v7();
    let early = session(user, 4000, 60_000);
    let late = session(user, 4000, 60_000);
    create(&store, &early, 50).await;
    create(&store, &late, 50).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(alive(&store, &early).await);
    if single_redis(&store) {
        let ttl = pttl(&store.key_names().session(&user, &early.sid)).await;
        assert!(ttl <= 3100, "a use 1 s in did not slide the 4 s TTL: {ttl}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(alive(&store, &late).await, "2.5 s in: due, slid to 6.5 s");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        !alive(&store, &early).await,
        "4.5 s in: ended 4 s after its start"
    );
    assert!(alive(&store, &late).await, "4.5 s in: the slid one lives");
}

async fn the_absolute_timeout_holds_even_with_activity(store: Store) {
    let user = Uuid::now_v7();
    let s = session(user, 10_000, 3000);
    create(&store, &s, 50).await;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(2000) {
        assert!(alive(&store, &s).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert!(
        !alive(&store, &s).await,
        "no activity extends a session past its absolute expiry"
    );
}

async fn the_cap_ends_the_least_recently_used(store: Store) {
    let user = Uuid::now_v7();
    let mut all = Vec::new();
    for _ in 0..3 {
        let s = session(user, 600_000, 600_000);
        create(&store, &s, 3).await;
        all.push(s);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let newest = session(user, 600_000, 600_000);
    let evicted = create(&store, &newest, 3).await;
    assert_eq!(evicted, vec![all[0].sid.clone()]);
    assert!(!alive(&store, &all[0]).await);
    assert!(alive(&store, &newest).await);
    assert_eq!(store.list_sessions(&user, now_ms()).await.unwrap().len(), 3);
}

/// An app session of `client_id` for `user`.
fn app_session_of(user: Uuid, client_id: &str) -> NewSession {
    NewSession {
        client_id: Some(client_id.into()),
        refresh_hash: Some(random_token()),
        ..app_session(user)
    }
}

/// Issue 22, item 4: app sessions never push a browser or API session out. They are
/// capped per user and app (the oldest of that app ends first) and the per-user cap
/// counts browser and API sessions only, so a browser's sign-in never ends an app's.
async fn app_sessions_are_capped_per_app_and_never_end_browser_or_api_sessions(store: Store) {
    let user = Uuid::now_v7();
    let caps = SessionCaps {
        per_user: 3,
        per_app: 2,
    };
    let laptop = session(user, 600_000, 600_000);
    let script = NewSession {
        kind: SessionKind::Api,
        refresh_hash: Some(random_token()),
        ..session(user, 600_000, 600_000)
    };
    for s in [&laptop, &script] {
        assert!(create_capped(&store, s, caps).await.is_empty());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wiki: Vec<NewSession> = (0..6)
        .map(|_| app_session_of(user, "wiki-client"))
        .collect();
    for (i, s) in wiki.iter().enumerate() {
        let evicted = create_capped(&store, s, caps).await;
        let expected: Vec<String> = (i >= 2)
            .then(|| wiki[i - 2].sid.clone())
            .into_iter()
            .collect();
        assert_eq!(
            evicted, expected,
            "wiki session {i}: the oldest of the app ends"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let blog = app_session_of(user, "blog-client");
    assert!(
        create_capped(&store, &blog, caps).await.is_empty(),
        "another app's own cap"
    );
    for s in [&laptop, &script, &wiki[4], &wiki[5], &blog] {
        assert!(
            alive(&store, s).await,
            "{:?} {:?} lives",
            s.kind,
            s.client_id
        );
    }
    for s in &wiki[..4] {
        assert!(!alive(&store, s).await);
    }
    // Browser and API sessions count among themselves: a third fits, a fourth ends the
    // least recently seen of them, never an app's.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let phone = session(user, 600_000, 600_000);
    assert!(create_capped(&store, &phone, caps).await.is_empty());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let tablet = session(user, 600_000, 600_000);
    assert_eq!(
        create_capped(&store, &tablet, caps).await,
        vec![laptop.sid.clone()]
    );
    for s in [&script, &phone, &tablet, &wiki[4], &wiki[5], &blog] {
        assert!(
            alive(&store, s).await,
            "{:?} {:?} lives",
            s.kind,
            s.client_id
        );
    }
    let listed = store.list_sessions(&user, now_ms()).await.expect("list");
    assert_eq!(listed.len(), 6, "{listed:?}");
}

async fn revoking_all_but_one_leaves_nothing_behind(store: Store) {
    let user = Uuid::now_v7();
    let keep = session(user, 600_000, 600_000);
    create(&store, &keep, 50).await;
    let mut others = Vec::new();
    for _ in 0..5 {
        let s = session(user, 600_000, 600_000);
        create(&store, &s, 50).await;
        others.push(s);
    }
    assert_eq!(
        store
            .revoke_sessions(&user, Some(&keep.sid), None, now_ms())
            .await
            .unwrap(),
        5
    );
    for s in &others {
        assert!(!alive(&store, s).await);
    }
    assert!(alive(&store, &keep).await);
    assert_eq!(
        store
            .revoke_sessions(&user, None, None, now_ms())
            .await
            .unwrap(),
        1
    );
    assert!(store
        .list_sessions(&user, now_ms())
        .await
        .unwrap()
        .is_empty());
    if single_redis(&store) {
        let keys = keys_under(store.key_names().prefix()).await;
        assert!(keys.is_empty(), "left behind: {keys:?}");
    }
}

async fn a_sign_in_checked_against_an_old_password_is_refused(store: Store) {
    let user = Uuid::now_v7();
    let old_version = 1_000;
    let new_version = 2_000;
    store
        .revoke_sessions(&user, None, Some(new_version), now_ms())
        .await
        .unwrap();
    let s = session(user, 600_000, 600_000);
    let stale = store
        .create_session(&s, cap(50), old_version, now_ms())
        .await
        .unwrap();
    assert_eq!(stale, Created::Stale);
    assert!(!alive(&store, &s).await);
    let fresh = store
        .create_session(&s, cap(50), new_version, now_ms())
        .await
        .unwrap();
    assert!(matches!(fresh, Created::Yes { .. }));
}

async fn concurrent_sign_ins_leave_index_and_hashes_consistent(store: Store) {
    let user = Uuid::now_v7();
    let sessions: Vec<NewSession> = (0..16).map(|_| session(user, 600_000, 600_000)).collect();
    let max = 10;
    let tasks = sessions.iter().cloned().map(|s| {
        let store = store.clone();
        tokio::spawn(async move { store.create_session(&s, cap(max), 0, now_ms()).await })
    });
    for t in tasks {
        assert!(matches!(t.await.unwrap().unwrap(), Created::Yes { .. }));
    }
    let listed = store.list_sessions(&user, now_ms()).await.unwrap();
    assert_eq!(listed.len(), max as usize, "the cap held under concurrency");
    let mut live = 0;
    for s in &sessions {
        if alive(&store, s).await {
            live += 1;
            assert!(
                listed.iter().any(|l| l.sid == s.sid),
                "a live session missing from the index"
            );
        }
    }
    assert_eq!(
        live, max as usize,
        "every indexed session has its hash and no other is alive"
    );
}

fn quota(store: &Store, name: &str, limit: u32, window_ms: i64) -> RateKey {
    RateKey {
        key: store.key_names().rate("test", name),
        limit,
        window_ms,
    }
}

async fn a_burst_gets_exactly_the_quota_through(store: Store) {
    let q = vec![quota(&store, "burst", 5, 60_000)];
    let tasks = (0..50).map(|i| {
        let (store, q) = (store.clone(), q.clone());
        tokio::spawn(async move { store.rate_acquire(&q, &format!("m{i}"), now_ms()).await })
    });
    let mut allowed = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            RateDecision::Allowed => allowed += 1,
            RateDecision::Limited { retry_after } => {
                assert!(
                    retry_after > Duration::from_secs(55) && retry_after <= Duration::from_secs(60)
                );
            }
        }
    }
    assert_eq!(allowed, 5);
}

/// On a cluster the two quotas are in different slots and are taken one after the
/// other (the later one tighter here, so attempts are taken back from the first).
async fn a_burst_on_two_quotas_passes_neither_limit_and_leaves_no_stray_count(store: Store) {
    let account = quota(&store, "acct", 8, 60_000);
    let ip = quota(&store, "ip", 5, 60_000);
    let both = vec![account.clone(), ip.clone()];
    let tasks = (0..50).map(|i| {
        let (store, both) = (store.clone(), both.clone());
        tokio::spawn(async move { store.rate_acquire(&both, &format!("m{i}"), now_ms()).await })
    });
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() == RateDecision::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 5,
        "the tighter quota lets exactly its limit through"
    );
    // The account quota counts only the 5 that passed: 3 more fit, the 4th does not.
    let one = std::slice::from_ref(&account);
    for i in 0..3 {
        let d = store.rate_acquire(one, &format!("x{i}"), now_ms()).await;
        assert_eq!(d.unwrap(), RateDecision::Allowed, "attempt {i}");
    }
    let d = store.rate_acquire(one, "x3", now_ms()).await.unwrap();
    assert!(matches!(d, RateDecision::Limited { .. }));
}

async fn quotas_are_all_or_nothing_and_a_success_can_be_taken_back(store: Store) {
    let account = quota(&store, "acct", 2, 2000);
    let ip = quota(&store, "ip", 3, 2000);
    let both = vec![account.clone(), ip.clone()];
    let now = now_ms();
    assert_eq!(
        store.rate_acquire(&both, "a", now).await.unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(
        store.rate_acquire(&both, "b", now).await.unwrap(),
        RateDecision::Allowed
    );
    // The account is full: nothing is recorded against the IP either.
    assert!(matches!(
        store.rate_acquire(&both, "c", now).await.unwrap(),
        RateDecision::Limited { .. }
    ));
    assert_eq!(
        store
            .rate_acquire(std::slice::from_ref(&ip), "d", now)
            .await
            .unwrap(),
        RateDecision::Allowed
    );
    assert!(matches!(
        store
            .rate_acquire(std::slice::from_ref(&ip), "e", now)
            .await
            .unwrap(),
        RateDecision::Limited { .. }
    ));
    // Taking back "b" frees one place in both.
    store.rate_release(&both, "b").await.unwrap();
    assert_eq!(
        store.rate_acquire(&both, "f", now).await.unwrap(),
        RateDecision::Allowed
    );
    // And the window moves on.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        store.rate_acquire(&both, "g", now_ms()).await.unwrap(),
        RateDecision::Allowed
    );
}

async fn reset_codes_are_single_use_and_burn_after_wrong_tries(store: Store) {
    let user = Uuid::now_v7();
    store
        .store_reset_code(&user, "right", 60_000, now_ms())
        .await
        .unwrap();
    assert_eq!(
        store
            .check_reset_code(&user, "wrong", 5, now_ms())
            .await
            .unwrap(),
        ResetCheck::Wrong
    );
    assert_eq!(
        store
            .check_reset_code(&user, "right", 5, now_ms())
            .await
            .unwrap(),
        ResetCheck::Right
    );
    assert_eq!(
        store
            .check_reset_code(&user, "right", 5, now_ms())
            .await
            .unwrap(),
        ResetCheck::Missing
    );

    store
        .store_reset_code(&user, "right", 60_000, now_ms())
        .await
        .unwrap();
    for _ in 0..4 {
        assert_eq!(
            store
                .check_reset_code(&user, "wrong", 5, now_ms())
                .await
                .unwrap(),
            ResetCheck::Wrong
        );
    }
    assert_eq!(
        store
            .check_reset_code(&user, "wrong", 5, now_ms())
            .await
            .unwrap(),
        ResetCheck::Burned
    );
    assert_eq!(
        store
            .check_reset_code(&user, "right", 5, now_ms())
            .await
            .unwrap(),
        ResetCheck::Missing
    );

    // A new request replaces the old code; an expired one is gone.
    store
        .store_reset_code(&user, "first", 60_000, now_ms())
        .await
        .unwrap();
    store
        .store_reset_code(&user, "second", 1500, now_ms())
        .await
        .unwrap();
    assert_eq!(
        store
            .check_reset_code(&user, "first", 5, now_ms())
            .await
            .unwrap(),
        ResetCheck::Wrong
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        store
            .check_reset_code(&user, "second", 5, now_ms())
            .await
            .unwrap(),
        ResetCheck::Missing
    );
}

async fn a_verification_is_used_once_by_its_code_or_its_link(store: Store) {
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let put = |user, code: &'static str, link: &'static str, ttl| {
        let store = store.clone();
        async move {
            store
                .store_verification(&user, code, link, ttl, now_ms())
                .await
                .expect("stored")
        }
    };
    let code = |user, mac: &'static str| {
        let store = store.clone();
        async move {
            store
                .check_verification_code(&user, mac, 5, now_ms())
                .await
                .expect("answers")
        }
    };
    let link = |user, mac: &'static str| {
        let store = store.clone();
        async move {
            store
                .take_verification_link(&user, mac, now_ms())
                .await
                .expect("answers")
        }
    };
    put(ada, "ada-code", "ada-link", 60_000).await;
    put(bob, "bob-code", "bob-link", 60_000).await;

    // Another account's code or link is nothing for this one, and costs it a try.
    assert_eq!(code(ada, "bob-code").await, ResetCheck::Wrong);
    assert!(!link(ada, "bob-link").await);
    assert!(!link(ada, "ada-code").await, "a code is no link");
    // The link uses it up, code and all; a replay finds nothing.
    assert!(link(ada, "ada-link").await);
    assert!(!link(ada, "ada-link").await, "a link works once");
    assert_eq!(code(ada, "ada-code").await, ResetCheck::Missing);
    // The code uses it up, link and all.
    assert_eq!(code(bob, "bob-code").await, ResetCheck::Right);
    assert_eq!(code(bob, "bob-code").await, ResetCheck::Missing);
    assert!(!link(bob, "bob-link").await);

    // A new one replaces the old; forgetting it ends it; an expired one is gone.
    put(ada, "first", "first-link", 60_000).await;
    put(ada, "second", "second-link", 60_000).await;
    assert!(!link(ada, "first-link").await);
    store.forget_verification(&ada).await.expect("forgotten");
    assert!(!link(ada, "second-link").await);
    put(ada, "short", "short-link", 1500).await;
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert!(!link(ada, "short-link").await);
    assert_eq!(code(ada, "short").await, ResetCheck::Missing);
}

async fn a_verification_code_burns_after_wrong_tries_and_takes_the_link_with_it(store: Store) {
    let user = Uuid::now_v7();
    store
        .store_verification(&user, "right", "link", 60_000, now_ms())
        .await
        .expect("stored");
    for _ in 0..4 {
        let wrong = store.check_verification_code(&user, "wrong", 5, now_ms());
        assert_eq!(wrong.await.expect("answers"), ResetCheck::Wrong);
    }
    let last = store.check_verification_code(&user, "wrong", 5, now_ms());
    assert_eq!(last.await.expect("answers"), ResetCheck::Burned);
    let right = store.check_verification_code(&user, "right", 5, now_ms());
    assert_eq!(right.await.expect("answers"), ResetCheck::Missing);
    let link = store.take_verification_link(&user, "link", now_ms());
    assert!(!link.await.expect("answers"), "burned whole");
    // Nothing is left behind in Redis.
    if single_redis(&store) {
        let mut conn = redis_conn().await;
        let exists: i64 = redis::cmd("EXISTS")
            .arg(store.key_names().verification(&user))
            .query_async(&mut conn)
            .await
            .expect("redis answers");
        assert_eq!(exists, 0);
    }
}

async fn every_session_answers_the_accounts_new_email_field_and_a_closed_account_stays_closed(
    store: Store,
) {
    let user = Uuid::now_v7();
    let a = session(user, 600_000, 600_000);
    let b = session(user, 600_000, 600_000);
    create(&store, &a, 50).await;
    create(&store, &b, 50).await;
    let touch = |s: &NewSession| {
        let (store, sid) = (store.clone(), s.sid.clone());
        async move {
            store
                .touch_session(&user, &sid, None, now_ms())
                .await
                .expect("store")
                .expect("live")
        }
    };
    let before = touch(&a).await;
    assert!(!before.email_verified, "a plain email is unverified");
    assert_eq!(before.email, a.email);

    let verified = email_field("new@example.com", true);
    store
        .set_account_email(&user, &verified)
        .await
        .expect("set");
    for s in [&a, &b] {
        let live = touch(s).await;
        assert!(live.email_verified);
        assert_eq!(live.email, "new@example.com");
    }
    let (_, list) = store
        .touch_and_list(&user, &a.sid, None, now_ms())
        .await
        .expect("store")
        .expect("live");
    assert_eq!(list.len(), 2, "the field is no session");

    // Closed: setting the field brings nothing back.
    store
        .close_account(&user, 9_000, now_ms())
        .await
        .expect("closed");
    store
        .set_account_email(&user, &verified)
        .await
        .expect("set");
    assert!(!alive(&store, &a).await);
    // No account at all: nothing is made.
    let nobody = Uuid::now_v7();
    store
        .set_account_email(&nobody, &verified)
        .await
        .expect("set");
    assert!(store
        .list_sessions(&nobody, now_ms())
        .await
        .expect("list")
        .is_empty());
}

async fn refresh_secrets_rotate_and_a_replay_ends_the_session(store: Store) {
    let user = Uuid::now_v7();
    let mut s = session(user, 600_000, 600_000);
    s.kind = SessionKind::Api;
    s.refresh_hash = Some("h1".into());
    create(&store, &s, 50).await;
    let now = now_ms();
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &strict("h1", "h2"), now)
            .await
            .unwrap(),
        Rotated::Yes
    );
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &strict("unknown", "h3"), now)
            .await
            .unwrap(),
        Rotated::Invalid
    );
    assert!(
        alive(&store, &s).await,
        "an unknown secret does not end the session"
    );
    // Two racing refreshes with the same secret and no grace window: exactly one wins.
    let (first, second) = (strict("h2", "h3a"), strict("h2", "h3b"));
    let (a, b) = tokio::join!(
        store.rotate_refresh(&user, &s.sid, &first, now),
        store.rotate_refresh(&user, &s.sid, &second, now)
    );
    let results = [a.unwrap(), b.unwrap()];
    assert_eq!(results.iter().filter(|r| **r == Rotated::Yes).count(), 1);
    assert_eq!(results.iter().filter(|r| **r == Rotated::Reused).count(), 1);
    assert!(!alive(&store, &s).await, "the replay ended the session");
    assert!(store
        .list_sessions(&user, now_ms())
        .await
        .unwrap()
        .is_empty());
}

async fn a_logged_out_access_token_is_refused(store: Store) {
    let user = Uuid::now_v7();
    let mut s = session(user, 600_000, 600_000);
    s.kind = SessionKind::Api;
    create(&store, &s, 50).await;
    assert!(store
        .touch_session(&user, &s.sid, Some("jti-1"), now_ms())
        .await
        .unwrap()
        .is_some());
    assert!(store
        .api_logout(&user, &s.sid, "jti-1", 60_000, now_ms())
        .await
        .unwrap());
    assert!(store
        .touch_session(&user, &s.sid, Some("jti-1"), now_ms())
        .await
        .unwrap()
        .is_none());
}

async fn trusted_devices_are_capped_expire_and_end_with_a_new_password(store: Store) {
    let user = Uuid::now_v7();
    let now = now_ms();
    let day = 86_400_000;
    let nonces: Vec<String> = (0..4).map(|_| random_token()).collect();
    for (i, nonce) in nonces.iter().enumerate() {
        // Trusted one after the other, each for 10 days, at most 3 kept.
        let at = now + i as i64;
        store
            .trust_browser(&user, nonce, 3, 10 * day, at)
            .await
            .expect("store");
    }
    let trusted = |nonce: &str, at: i64| {
        let (store, nonce) = (store.clone(), nonce.to_string());
        async move {
            store
                .browser_trusted(&user, &nonce, at)
                .await
                .expect("store")
        }
    };
    assert!(
        !trusted(&nonces[0], now + 10).await,
        "the oldest past the cap is dropped"
    );
    for nonce in &nonces[1..] {
        assert!(trusted(nonce, now + 10).await);
    }
    assert!(!trusted("never-trusted", now + 10).await);
    assert!(!trusted(&nonces[3], now + 11 * day).await, "trust expires");
    // Renewing one keeps it over those trusted after it.
    store
        .trust_browser(&user, &nonces[1], 3, 10 * day, now + 100)
        .await
        .expect("store");
    let newest = random_token();
    store
        .trust_browser(&user, &newest, 3, 10 * day, now + 200)
        .await
        .expect("store");
    assert!(trusted(&nonces[1], now + 300).await);
    assert!(!trusted(&nonces[2], now + 300).await);
    // A new password (a new version) ends them all; ending sessions alone does not.
    store
        .revoke_sessions(&user, None, None, now + 400)
        .await
        .expect("store");
    assert!(trusted(&newest, now + 500).await);
    store
        .revoke_sessions(&user, None, Some(now + 600), now + 600)
        .await
        .expect("store");
    assert!(!trusted(&newest, now + 700).await);
}

/// A reset code mailed before a password change is dead after it; ending sessions
/// without a new password leaves it.
async fn a_new_password_ends_the_reset_code(store: Store) {
    let user = Uuid::now_v7();
    let now = now_ms();
    let check = |mac: &'static str| {
        let store = store.clone();
        async move {
            store
                .check_reset_code(&user, mac, 5, now_ms())
                .await
                .expect("store")
        }
    };
    store
        .store_reset_code(&user, "kept", 60_000, now)
        .await
        .expect("store");
    store
        .revoke_sessions(&user, None, None, now)
        .await
        .expect("store");
    assert_eq!(check("kept").await, ResetCheck::Right);
    store
        .store_reset_code(&user, "mailed", 60_000, now)
        .await
        .expect("store");
    store
        .revoke_sessions(&user, None, Some(now + 1), now + 1)
        .await
        .expect("store");
    assert_eq!(check("mailed").await, ResetCheck::Missing);
}

async fn one_call_checks_the_session_and_lists_them_all(store: Store) {
    let user = Uuid::now_v7();
    let a = session(user, 600_000, 600_000);
    let mut b = session(user, 600_000, 600_000);
    b.kind = SessionKind::Api;
    b.label = "backup-script".into();
    b.mobile = true;
    create(&store, &a, 50).await;
    create(&store, &b, 50).await;
    let (live, list) = store
        .touch_and_list(&user, &a.sid, None, now_ms())
        .await
        .unwrap()
        .expect("live");
    assert_eq!(live.kind, SessionKind::Browser);
    assert_eq!(live.email, a.email);
    assert_eq!(list.len(), 2);
    let api = list
        .iter()
        .find(|s| s.sid == b.sid)
        .expect("the API session");
    assert_eq!(api.kind, SessionKind::Api);
    assert_eq!(api.label, "backup-script");
    assert!(api.mobile);
    let web = list.iter().find(|s| s.sid == a.sid).expect("this session");
    assert_eq!((web.kind, web.mobile), (SessionKind::Browser, false));
    assert_eq!(web.ip, "203.0.113.5");
    // A session that does not live gets nothing, the list included.
    assert!(store
        .touch_and_list(&user, &session(user, 1, 1).sid, None, now_ms())
        .await
        .unwrap()
        .is_none());
}

async fn a_closed_account_has_no_live_session_and_no_late_one(store: Store) {
    let user = Uuid::now_v7();
    let a = session(user, 600_000, 600_000);
    let mut b = session(user, 600_000, 600_000);
    b.kind = SessionKind::Api;
    b.refresh_hash = Some("h1".into());
    create(&store, &a, 50).await;
    create(&store, &b, 50).await;
    let version = 5_000;
    assert_eq!(
        store.close_account(&user, version, now_ms()).await.unwrap(),
        2
    );
    assert!(!alive(&store, &a).await);
    assert!(store
        .touch_session(&user, &b.sid, Some("jti"), now_ms())
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .rotate_refresh(&user, &b.sid, &strict("h1", "h2"), now_ms())
            .await
            .unwrap(),
        Rotated::Invalid
    );
    assert!(store
        .list_sessions(&user, now_ms())
        .await
        .unwrap()
        .is_empty());
    if single_redis(&store) {
        // The email went with the account: only the password version is left.
        let keys = keys_under(store.key_names().prefix()).await;
        assert_eq!(keys, vec![store.key_names().password_version(&user)]);
    }
    // A sign-in whose password was checked before the close does not land after it.
    let late = session(user, 600_000, 600_000);
    assert_eq!(
        store
            .create_session(&late, cap(50), version - 1, now_ms())
            .await
            .unwrap(),
        Created::Stale
    );
    assert!(!alive(&store, &late).await);
    // Enabled again (a newer version): sessions work, with the email back.
    let again = session(user, 600_000, 600_000);
    assert!(matches!(
        store
            .create_session(&again, cap(50), version + 1, now_ms())
            .await
            .unwrap(),
        Created::Yes { .. }
    ));
    let live = store
        .touch_session(&user, &again.sid, None, now_ms())
        .await
        .unwrap()
        .expect("live");
    assert_eq!(live.email, again.email);
}

async fn refresh_history_keeps_five_earlier_secrets(store: Store) {
    let user = Uuid::now_v7();
    let mut s = session(user, 600_000, 600_000);
    s.kind = SessionKind::Api;
    s.refresh_hash = Some("h0".into());
    create(&store, &s, 50).await;
    for i in 1..=7 {
        let (old, new) = (format!("h{}", i - 1), format!("h{i}"));
        assert_eq!(
            store
                .rotate_refresh(&user, &s.sid, &strict(&old, &new), now_ms())
                .await
                .unwrap(),
            Rotated::Yes
        );
    }
    // h7 is current; h2..h6 are remembered; h0 and h1 are forgotten.
    for forgotten in ["h0", "h1"] {
        assert_eq!(
            store
                .rotate_refresh(&user, &s.sid, &strict(forgotten, "x"), now_ms())
                .await
                .unwrap(),
            Rotated::Invalid,
            "{forgotten}"
        );
    }
    assert!(alive(&store, &s).await);
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &strict("h2", "x"), now_ms())
            .await
            .unwrap(),
        Rotated::Reused
    );
    assert!(!alive(&store, &s).await);
}

/// Every field of a session hash stays within `hash-max-listpack-value`, so Redis keeps
/// it as a listpack: the longest label, an IPv6 address, a phone, an API session with
/// its full refresh history.
#[tokio::test]
async fn session_hashes_stay_listpacks() {
    let store = redis_store(&unique("lks"));
    let user = Uuid::now_v7();
    let mut s = session(user, 600_000, 600_000);
    s.kind = SessionKind::Api;
    s.label = "é".repeat(32);
    s.mobile = true;
    s.ip = "2001:db8:85a3:1234:5678:8a2e:370:7334".into();
    let hash = |i: usize| sha256_hex(format!("secret {i}").as_bytes());
    s.refresh_hash = Some(hash(0));
    create(&store, &s, 50).await;
    for i in 1..=8 {
        assert_eq!(
            store
                .rotate_refresh(&user, &s.sid, &strict(&hash(i - 1), &hash(i)), now_ms())
                .await
                .unwrap(),
            Rotated::Yes
        );
    }
    let mut conn = redis_conn().await;
    let key = store.key_names().session(&user, &s.sid);
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(encoding, "listpack");
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(fields.iter().all(|f| f.len() <= 2), "{fields:?}");
    assert!(
        fields.iter().any(|f| f == "g"),
        "the rotation time: {fields:?}"
    );
}

/// The hot path slides only the session hash's TTL; the user hash's entry is rewritten
/// at most once a minute. A session kept in use past its first idle expiry must still
/// be listed (by the devices page's one call and by the plain listing) and counted,
/// and the user hash (with the email) must outlive it.
async fn a_session_kept_in_use_stays_listed_past_its_first_expiry(store: Store) {
    let user = Uuid::now_v7();
    let s = session(user, 1000, 60_000);
    create(&store, &s, 50).await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, listed) = store
            .touch_and_list(&user, &s.sid, None, now_ms())
            .await
            .unwrap()
            .expect("live");
        assert_eq!(listed.len(), 1);
        let listed = store.list_sessions(&user, now_ms()).await.unwrap();
        assert_eq!(
            listed.len(),
            1,
            "2.4 s in, a 1 s idle session in use is listed"
        );
    }
    // The raw keys are read on the single Redis (the cluster's are spread over nodes);
    // what they mean, listing and counting, is checked on every store above and below.
    if single_redis(&store) {
        let mut conn = redis_conn().await;
        let session_ttl = pttl(&store.key_names().session(&user, &s.sid)).await;
        let user_ttl = pttl(&store.key_names().user(&user)).await;
        let entry: i64 = redis::cmd("HGET")
            .arg(store.key_names().user(&user))
            .arg(&s.sid)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(session_ttl > 0 && session_ttl <= 1000, "{session_ttl}");
        assert!(user_ttl >= session_ttl, "{user_ttl} < {session_ttl}");
        assert!(
            entry >= now_ms() + session_ttl,
            "the entry is behind the session"
        );
    }
    // A newer session at a cap of 2 leaves it alone: it is counted as live.
    let t = session(user, 600_000, 600_000);
    assert!(create(&store, &t, 2).await.is_empty());
    assert!(alive(&store, &s).await);
}

/// An API session with refresh hash `h1`, rotated once to `h2` at the returned time.
async fn rotated_once(store: &Store) -> (Uuid, NewSession, i64) {
    let user = Uuid::now_v7();
    let mut s = session(user, 600_000, 600_000);
    s.kind = SessionKind::Api;
    s.refresh_hash = Some("h1".into());
    create(store, &s, 50).await;
    let at = now_ms();
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h1", "h2"), at)
            .await
            .unwrap(),
        Rotated::Yes
    );
    (user, s, at)
}

async fn the_previous_secret_within_the_window_names_the_current_successor(store: Store) {
    let (user, s, at) = rotated_once(&store).await;

    for later in [0, 1, GRACE_MS / 2, GRACE_MS - 1] {
        assert_eq!(
            store
                .rotate_refresh(&user, &s.sid, &graced("h1", "h2"), at + later)
                .await
                .unwrap(),
            Rotated::Again,
            "{later} ms after the rotation"
        );
    }

    assert!(alive(&store, &s).await);
    // Nothing moved: h2 is still the current secret and rotates as usual, and the
    // retries did not make h1 current again.
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h2", "h3"), at + 2)
            .await
            .unwrap(),
        Rotated::Yes
    );
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h3", "h4"), at + 3)
            .await
            .unwrap(),
        Rotated::Yes
    );
}

async fn two_racing_refreshes_with_one_secret_both_keep_the_session(store: Store) {
    let user = Uuid::now_v7();
    let mut s = session(user, 600_000, 600_000);
    s.kind = SessionKind::Api;
    s.refresh_hash = Some("h1".into());
    create(&store, &s, 50).await;
    let now = now_ms();

    let tab = graced("h1", "h2");
    let (a, b) = tokio::join!(
        store.rotate_refresh(&user, &s.sid, &tab, now),
        store.rotate_refresh(&user, &s.sid, &tab, now)
    );

    let mut results = [a.unwrap(), b.unwrap()];
    results.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(results, [Rotated::Again, Rotated::Yes]);
    assert!(alive(&store, &s).await, "the race did not end the session");
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h2", "h3"), now)
            .await
            .unwrap(),
        Rotated::Yes,
        "the one successor both got is current"
    );
}

async fn the_previous_secret_after_the_window_ends_the_session(store: Store) {
    let (user, s, at) = rotated_once(&store).await;

    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h1", "h2"), at + GRACE_MS)
            .await
            .unwrap(),
        Rotated::Reused
    );

    assert!(!alive(&store, &s).await);
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h2", "h3"), at + GRACE_MS)
            .await
            .unwrap(),
        Rotated::Invalid,
        "the successor ended with the session"
    );
}

async fn a_secret_two_rotations_old_ends_the_session_within_the_window(store: Store) {
    let (user, s, at) = rotated_once(&store).await;
    // The successor is used at once, so h1 is two rotations old a millisecond later.
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h2", "h3"), at + 1)
            .await
            .unwrap(),
        Rotated::Yes
    );
    // h2 is now the previous one: still answered within its window...
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h2", "h3"), at + 2)
            .await
            .unwrap(),
        Rotated::Again
    );

    // ...but h1, presented with the successor it derives, is a replay.
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h1", "h2"), at + 3)
            .await
            .unwrap(),
        Rotated::Reused
    );

    assert!(!alive(&store, &s).await);
}

async fn a_retry_naming_another_successor_is_refused_and_ends_nothing(store: Store) {
    let (user, s, at) = rotated_once(&store).await;

    // The previous secret, but a successor that is not the current one (the key that
    // derives successors changed since): no answer to give, and no sign of theft.
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h1", "other"), at + 1)
            .await
            .unwrap(),
        Rotated::Invalid
    );

    assert!(alive(&store, &s).await);
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h2", "h3"), at + 2)
            .await
            .unwrap(),
        Rotated::Yes
    );
}

async fn without_a_window_the_previous_secret_ends_the_session(store: Store) {
    let (user, s, at) = rotated_once(&store).await;

    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &strict("h1", "h2"), at)
            .await
            .unwrap(),
        Rotated::Reused
    );

    assert!(!alive(&store, &s).await);
}

async fn revoking_a_refresh_token_ends_its_session_and_only_the_current_one_is_active(
    store: Store,
) {
    let user = Uuid::now_v7();
    let mut s = session(user, 600_000, 600_000);
    s.kind = SessionKind::Api;
    s.refresh_hash = Some("h1".into());
    create(&store, &s, 50).await;
    let browser = session(user, 600_000, 600_000);
    create(&store, &browser, 50).await;
    let signed_in = now_ms();
    let issued = store
        .refresh_status(&user, &s.sid, "h1", now_ms())
        .await
        .unwrap()
        .expect("the first secret is active");
    assert!(
        (signed_in - 5_000..=signed_in).contains(&issued),
        "{issued}"
    );
    let rotated_at = now_ms() + 10;
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &graced("h1", "h2"), rotated_at)
            .await
            .unwrap(),
        Rotated::Yes
    );

    // Only the current secret is active, issued at its rotation; looking changes nothing.
    for _ in 0..2 {
        assert_eq!(
            store
                .refresh_status(&user, &s.sid, "h1", now_ms())
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .refresh_status(&user, &s.sid, "h2", now_ms())
                .await
                .unwrap(),
            Some(rotated_at)
        );
    }
    assert_eq!(
        store
            .refresh_status(&user, &browser.sid, "", now_ms())
            .await
            .unwrap(),
        None,
        "a browser session has no refresh token"
    );
    // An unknown secret ends nothing; a remembered earlier one ends the session.
    assert!(!store
        .revoke_refresh(&user, &s.sid, "unknown", now_ms())
        .await
        .unwrap());
    assert!(alive(&store, &s).await);
    assert!(store
        .revoke_refresh(&user, &s.sid, "h1", now_ms())
        .await
        .unwrap());

    assert!(!alive(&store, &s).await);
    assert!(alive(&store, &browser).await, "other sessions go on");
    assert_eq!(
        store
            .refresh_status(&user, &s.sid, "h2", now_ms())
            .await
            .unwrap(),
        None
    );
    assert!(!store
        .revoke_refresh(&user, &s.sid, "h2", now_ms())
        .await
        .unwrap());
    let listed: Vec<String> = store
        .list_sessions(&user, now_ms())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.sid)
        .collect();
    assert_eq!(listed, vec![browser.sid.clone()]);
}

async fn revoking_an_access_token_stops_it_alone(store: Store) {
    let user = Uuid::now_v7();
    let mut s = session(user, 600_000, 600_000);
    s.kind = SessionKind::Api;
    s.refresh_hash = Some("h1".into());
    create(&store, &s, 50).await;
    let token_a = "jti-aaaaaaaaaaaaaaaa";
    let token_b = "jti-bbbbbbbbbbbbbbbb";

    store
        .revoke_access(&user, token_a, 60_000, now_ms())
        .await
        .unwrap();

    assert!(store
        .touch_session(&user, &s.sid, Some(token_a), now_ms())
        .await
        .unwrap()
        .is_none());
    assert!(store
        .touch_session(&user, &s.sid, Some(token_b), now_ms())
        .await
        .unwrap()
        .is_some());
    assert!(
        store
            .refresh_status(&user, &s.sid, "h1", now_ms())
            .await
            .unwrap()
            .is_some(),
        "the session and its refresh token go on"
    );
}

/// An app session (OpenID Connect) for `user`.
fn app_session(user: Uuid) -> NewSession {
    let mut s = session(user, 600_000, 600_000);
    s.kind = SessionKind::App;
    s.label = "Grafana".into();
    s.client_id = Some("client-1".into());
    s.refresh_hash = Some("r1".into());
    s
}

async fn authorization_codes_are_used_once_and_a_second_use_ends_both_sessions(store: Store) {
    let user = Uuid::now_v7();
    let now = now_ms();
    store
        .put_auth_code(&user, "code1", "{\"x\":1}", 60_000, now)
        .await
        .expect("stored");
    assert_eq!(
        store
            .get_auth_code(&user, "code1", now)
            .await
            .expect("store"),
        Some(AuthCodeState::Unused("{\"x\":1}".into()))
    );
    assert_eq!(
        store
            .get_auth_code(&user, "other", now)
            .await
            .expect("store"),
        None
    );
    // Another user's id names nothing.
    assert_eq!(
        store
            .get_auth_code(&Uuid::now_v7(), "code1", now)
            .await
            .expect("store"),
        None
    );
    // Looking without a session leaves an unused code as it is.
    assert_eq!(
        store
            .redeem_auth_code(&user, "code1", None, None, now)
            .await
            .expect("store"),
        Redeemed::Gone
    );
    let first = app_session(user);
    create(&store, &first, 50).await;
    assert_eq!(
        store
            .redeem_auth_code(&user, "code1", Some(&first.sid), None, now)
            .await
            .expect("store"),
        Redeemed::Yes
    );
    assert_eq!(
        store
            .get_auth_code(&user, "code1", now)
            .await
            .expect("store"),
        Some(AuthCodeState::Used {
            sid: first.sid.clone(),
            request: "{\"x\":1}".into()
        }),
        "a used code keeps its request, to check a replay as strictly as a first use"
    );
    assert!(alive(&store, &first).await);
    // The second use: its own new session and the first one both end.
    let second = app_session(user);
    create(&store, &second, 50).await;
    assert_eq!(
        store
            .redeem_auth_code(&user, "code1", Some(&second.sid), None, now)
            .await
            .expect("store"),
        Redeemed::Replayed
    );
    assert!(
        !alive(&store, &first).await,
        "the first use's session ended"
    );
    assert!(!alive(&store, &second).await, "the replay's session ended");
    // A code that is gone ends the session started for it.
    let third = app_session(user);
    create(&store, &third, 50).await;
    assert_eq!(
        store
            .redeem_auth_code(&user, "missing", Some(&third.sid), None, now)
            .await
            .expect("store"),
        Redeemed::Gone
    );
    assert!(!alive(&store, &third).await);
    // Racing first uses: one wins, the other ends both.
    store
        .put_auth_code(&user, "code2", "{}", 60_000, now)
        .await
        .expect("stored");
    let (a, b) = (app_session(user), app_session(user));
    create(&store, &a, 50).await;
    create(&store, &b, 50).await;
    let (ra, rb) = tokio::join!(
        store.redeem_auth_code(&user, "code2", Some(&a.sid), None, now),
        store.redeem_auth_code(&user, "code2", Some(&b.sid), None, now)
    );
    let mut results = [ra.expect("store"), rb.expect("store")];
    results.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(results, [Redeemed::Replayed, Redeemed::Yes]);
    assert!(!alive(&store, &a).await && !alive(&store, &b).await);
    // A code ends with the browser session that allowed it (issue 22).
    let browser = session(user, 600_000, 600_000);
    create(&store, &browser, 50).await;
    for (code, signed_out) in [("code4", false), ("code5", true)] {
        store
            .put_auth_code(&user, code, "{}", 60_000, now_ms())
            .await
            .expect("stored");
        if signed_out {
            store
                .revoke_session(&user, &browser.sid, now_ms())
                .await
                .expect("store");
        }
        let app = app_session(user);
        create(&store, &app, 50).await;
        let redeemed = store
            .redeem_auth_code(&user, code, Some(&app.sid), Some(&browser.sid), now_ms())
            .await
            .expect("store");
        if signed_out {
            assert_eq!(redeemed, Redeemed::AllowedByEnded);
            assert!(!alive(&store, &app).await, "its new session ended");
            let left = store
                .get_auth_code(&user, code, now_ms())
                .await
                .expect("store");
            assert_eq!(left, None, "the code is gone");
        } else {
            assert_eq!(redeemed, Redeemed::Yes);
            assert!(alive(&store, &app).await);
        }
    }
    // An unused code expires after its time.
    store
        .put_auth_code(&user, "code3", "{}", 50, now_ms())
        .await
        .expect("stored");
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(
        store
            .get_auth_code(&user, "code3", now_ms())
            .await
            .expect("store"),
        None
    );
}

async fn app_sessions_rotate_their_refresh_secrets_and_list_as_apps(store: Store) {
    let user = Uuid::now_v7();
    let s = app_session(user);
    create(&store, &s, 50).await;
    let listed = store.list_sessions(&user, now_ms()).await.expect("store");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, SessionKind::App);
    assert_eq!(listed[0].label, "Grafana");
    let live = store
        .touch_session(&user, &s.sid, None, now_ms())
        .await
        .expect("store")
        .expect("live");
    assert_eq!(live.kind, SessionKind::App);
    let now = now_ms();
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &strict("r1", "r2"), now)
            .await
            .expect("store"),
        Rotated::Yes
    );
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &strict("r2", "r3"), now)
            .await
            .expect("store"),
        Rotated::Yes
    );
    // An older secret again: theft, the app session ends.
    assert_eq!(
        store
            .rotate_refresh(&user, &s.sid, &strict("r1", "r4"), now)
            .await
            .expect("store"),
        Rotated::Reused
    );
    assert!(!alive(&store, &s).await);
    // A browser session never rotates.
    let mut b = session(user, 600_000, 600_000);
    b.refresh_hash = Some("x".into());
    create(&store, &b, 50).await;
    assert_eq!(
        store
            .rotate_refresh(&user, &b.sid, &strict("x", "y"), now)
            .await
            .expect("store"),
        Rotated::Invalid
    );
}

async fn how_a_session_signed_in_is_kept_checked_and_listed(store: Store) {
    let user = Uuid::now_v7();
    let password_only = session(user, 600_000, 600_000);
    let mut two_step = session(user, 600_000, 600_000);
    two_step.amr = Amr::PasswordAndOtp;
    create(&store, &password_only, 50).await;
    create(&store, &two_step, 50).await;
    // The hot path answers it, in the same one call.
    let live = |s: &NewSession| {
        let (store, s) = (store.clone(), s.clone());
        async move {
            store
                .touch_session(&s.user_id, &s.sid, None, now_ms())
                .await
                .expect("store")
                .expect("live")
        }
    };
    assert_eq!(live(&password_only).await.amr, Amr::Password);
    assert_eq!(live(&two_step).await.amr, Amr::PasswordAndOtp);
    assert_eq!(Amr::PasswordAndOtp.values(), ["pwd", "otp"]);
    let (checked, list) = store
        .touch_and_list(&user, &two_step.sid, None, now_ms())
        .await
        .expect("store")
        .expect("live");
    assert_eq!(checked.amr, Amr::PasswordAndOtp);
    let amr_of = |sid: &str| list.iter().find(|s| s.sid == sid).map(|s| s.amr);
    assert_eq!(amr_of(&two_step.sid), Some(Amr::PasswordAndOtp));
    assert_eq!(amr_of(&password_only.sid), Some(Amr::Password));
    if single_redis(&store) {
        // Kept in the session hash, a short field; nothing for a password alone.
        let mut conn = redis_conn().await;
        let key = store.key_names().session(&user, &two_step.sid);
        let am: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("o")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(am.as_deref(), Some("1"));
        let key = store.key_names().session(&user, &password_only.sid);
        let am: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("o")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(am, None);
    }
}

fn pending(now: i64, ttl_ms: i64) -> PendingSignIn {
    PendingSignIn {
        remember: true,
        target: "/devices?tab=all".into(),
        password_version: 42,
        created_ms: now,
        expires_ms: now + ttl_ms,
        wrong: 0,
    }
}

async fn a_pending_sign_in_ends_after_five_wrong_codes(store: Store) {
    let user = Uuid::now_v7();
    let pid = sid_for(&random_token());
    let now = now_ms();
    let p = pending(now, 300_000);
    store.start_pending(&user, &pid, &p, now).await.unwrap();
    assert_eq!(
        store.read_pending(&user, &pid, now).await.unwrap(),
        Some(p.clone())
    );
    for left in (1..=4).rev() {
        assert_eq!(
            store.fail_pending(&user, &pid, 5, now).await.unwrap(),
            PendingFailure::Counted { left }
        );
    }
    let read = store.read_pending(&user, &pid, now).await.unwrap();
    assert_eq!(
        read.map(|p| p.wrong),
        Some(4),
        "the wrong codes are counted"
    );
    assert_eq!(
        store.fail_pending(&user, &pid, 5, now).await.unwrap(),
        PendingFailure::Ended
    );
    assert_eq!(store.read_pending(&user, &pid, now).await.unwrap(), None);
    assert_eq!(store.take_pending(&user, &pid, now).await.unwrap(), None);
    assert_eq!(
        store.fail_pending(&user, &pid, 5, now).await.unwrap(),
        PendingFailure::Missing
    );
    // Another user's id names nothing, even with the same pending id.
    store.start_pending(&user, &pid, &p, now).await.unwrap();
    let other = Uuid::now_v7();
    assert_eq!(store.read_pending(&other, &pid, now).await.unwrap(), None);
    assert_eq!(
        store.fail_pending(&other, &pid, 5, now).await.unwrap(),
        PendingFailure::Missing
    );
    assert_eq!(store.take_pending(&other, &pid, now).await.unwrap(), None);
    assert!(store
        .read_pending(&user, &pid, now)
        .await
        .unwrap()
        .is_some());
}

async fn a_pending_sign_in_is_used_once_and_expires(store: Store) {
    let user = Uuid::now_v7();
    let now = now_ms();
    let pid = sid_for(&random_token());
    store
        .start_pending(&user, &pid, &pending(now, 300_000), now)
        .await
        .unwrap();
    if single_redis(&store) {
        let ttl = pttl(&store.key_names().pending(&user, &pid)).await;
        assert!(
            ttl > 290_000 && ttl <= 300_000,
            "expires with the sign-in: {ttl}"
        );
    }
    // Of concurrent takes, exactly one gets it.
    let takes = (0..8).map(|_| {
        let (store, pid) = (store.clone(), pid.clone());
        tokio::spawn(async move { store.take_pending(&user, &pid, now).await.unwrap() })
    });
    let mut got = 0;
    for t in takes {
        got += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(got, 1, "used once");
    assert_eq!(store.read_pending(&user, &pid, now).await.unwrap(), None);

    // Past its expiry it is gone for every operation, whatever the store's own TTL.
    let pid = sid_for(&random_token());
    store
        .start_pending(&user, &pid, &pending(now, 300_000), now)
        .await
        .unwrap();
    let later = now + 300_000;
    assert_eq!(store.read_pending(&user, &pid, later).await.unwrap(), None);
    assert_eq!(
        store.fail_pending(&user, &pid, 5, later).await.unwrap(),
        PendingFailure::Missing
    );
    assert_eq!(store.take_pending(&user, &pid, later).await.unwrap(), None);
    assert!(
        store
            .read_pending(&user, &pid, now)
            .await
            .unwrap()
            .is_none(),
        "deleted"
    );
}

async fn a_passkey_ceremony_is_taken_once_and_expires(store: Store) {
    let now = now_ms();
    let cid = sid_for(&random_token());
    let state = r#"{"SignIn":{"challenge":"abc|def"}}"#;
    store.put_ceremony(&cid, state, 300_000, now).await.unwrap();
    if single_redis(&store) {
        let ttl = pttl(&store.key_names().ceremony(&cid)).await;
        assert!(ttl > 290_000 && ttl <= 300_000, "5 minutes: {ttl}");
    }
    // Of concurrent takes (a replayed answer racing the first), exactly one gets it.
    let takes = (0..8).map(|_| {
        let (store, cid) = (store.clone(), cid.clone());
        tokio::spawn(async move { store.take_ceremony(&cid, now).await.unwrap() })
    });
    let mut got = vec![];
    for t in takes {
        got.extend(t.await.unwrap());
    }
    assert_eq!(got, vec![state.to_string()], "taken once, as stored");
    assert_eq!(store.take_ceremony(&cid, now).await.unwrap(), None);

    // Past its expiry it is gone, whatever the store's own TTL.
    store.put_ceremony(&cid, state, 300_000, now).await.unwrap();
    assert_eq!(
        store.take_ceremony(&cid, now + 300_000).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_ceremony(&cid, now).await.unwrap(),
        None,
        "deleted"
    );

    // A new ceremony under the same id replaces the old one; another id is apart.
    store
        .put_ceremony(&cid, "first", 300_000, now)
        .await
        .unwrap();
    store
        .put_ceremony(&cid, "second", 300_000, now)
        .await
        .unwrap();
    let other = sid_for(&random_token());
    assert_eq!(store.take_ceremony(&other, now).await.unwrap(), None);
    assert_eq!(
        store.take_ceremony(&cid, now).await.unwrap().as_deref(),
        Some("second")
    );
}

async fn an_address_change_is_confirmed_once_and_burns_after_wrong_tries(store: Store) {
    let user = Uuid::now_v7();
    assert_eq!(
        store.pending_email_change(&user, now_ms()).await.unwrap(),
        None
    );
    store
        .start_email_change(&user, "new@example.com", "right", 60_000, now_ms())
        .await
        .unwrap();
    assert_eq!(
        store.pending_email_change(&user, now_ms()).await.unwrap(),
        Some("new@example.com".into())
    );
    let check = |mac: &'static str| {
        let store = store.clone();
        async move {
            store
                .confirm_email_change(&user, mac, 3, now_ms())
                .await
                .unwrap()
        }
    };
    assert_eq!(check("wrong").await, EmailChangeCheck::Wrong);
    // Another account's change is not this one's.
    assert_eq!(
        store
            .confirm_email_change(&Uuid::now_v7(), "right", 3, now_ms())
            .await
            .unwrap(),
        EmailChangeCheck::Missing
    );
    assert_eq!(
        check("right").await,
        EmailChangeCheck::Right("new@example.com".into())
    );
    assert_eq!(check("right").await, EmailChangeCheck::Missing, "used once");
    assert_eq!(
        store.pending_email_change(&user, now_ms()).await.unwrap(),
        None
    );

    store
        .start_email_change(&user, "other@example.com", "right", 60_000, now_ms())
        .await
        .unwrap();
    assert_eq!(check("wrong").await, EmailChangeCheck::Wrong);
    assert_eq!(check("wrong").await, EmailChangeCheck::Wrong);
    assert_eq!(check("wrong").await, EmailChangeCheck::Burned);
    assert_eq!(check("right").await, EmailChangeCheck::Missing, "burned");

    // Expired: gone, whatever the code.
    store
        .start_email_change(&user, "late@example.com", "right", 50, now_ms())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(check("right").await, EmailChangeCheck::Missing);
}

async fn an_undo_link_works_once_and_ends_every_other(store: Store) {
    let user = Uuid::now_v7();
    let week = 7 * 24 * 3600 * 1000;
    store
        .keep_email_undo(&user, "first", "a@example.com", week, now_ms())
        .await
        .unwrap();
    store
        .keep_email_undo(&user, "second", "b@example.com", week, now_ms())
        .await
        .unwrap();
    store
        .start_email_change(&user, "c@example.com", "mac", 60_000, now_ms())
        .await
        .unwrap();
    assert_eq!(
        store
            .take_email_undo(&Uuid::now_v7(), "first", now_ms())
            .await
            .unwrap(),
        None,
        "another account's links are not this one's"
    );
    assert_eq!(
        store
            .take_email_undo(&user, "unknown", now_ms())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_email_undo(&user, "first", now_ms())
            .await
            .unwrap(),
        Some("a@example.com".into())
    );
    // Used once; and the other link and the waiting change went with it.
    assert_eq!(
        store
            .take_email_undo(&user, "first", now_ms())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_email_undo(&user, "second", now_ms())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.pending_email_change(&user, now_ms()).await.unwrap(),
        None
    );

    // An expired link puts nothing back and leaves the live ones.
    store
        .keep_email_undo(&user, "short", "d@example.com", 50, now_ms())
        .await
        .unwrap();
    store
        .keep_email_undo(&user, "long", "e@example.com", week, now_ms())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        store
            .take_email_undo(&user, "short", now_ms())
            .await
            .unwrap(),
        None
    );
    if single_redis(&store) {
        let ttl = pttl(&store.key_names().email_undo(&user)).await;
        assert!(ttl > week - 60_000, "the links live a week: {ttl}");
    }
    store.forget_email_changes(&user).await.unwrap();
    assert_eq!(
        store
            .take_email_undo(&user, "long", now_ms())
            .await
            .unwrap(),
        None
    );
    if single_redis(&store) {
        assert!(keys_under(store.key_names().prefix()).await.is_empty());
    }
}
