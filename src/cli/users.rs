//! `latchkey users list|show|disable|enable|sessions|end-sessions|reset-second-factor|
//! verify|remove-passkeys|delete|activity`: accounts as the operator sees them, and what
//! is done to one (disable or enable it, sign it out everywhere, turn its second factor
//! off or remove its passkeys for an owner who lost the device, mark its address
//! verified, or every account's, delete it, list its activity),
//! through the same services the server uses (`account_admin`, `sessions`). Times are
//! RFC 3339, UTC, in text and JSON alike.

use clap::Subcommand;
use serde::Serialize;

use super::output::{Line, Output};
use super::parts::{CliError, Parts};
use crate::accounts::User;
use crate::services::activity::{self, EndedBy, Event, EventView, Kind};
use crate::store::SessionRecord;
use crate::support::clock::iso_time;
use crate::support::input::Email;

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Every account, oldest first: id, created, status, email.
    List,
    /// One account, with how many sessions it has and its passkeys.
    Show { email: String },
    /// Sign the account out everywhere and refuse its sign-ins (answered as wrong
    /// credentials) until it is enabled.
    Disable { email: String },
    /// Let a disabled account sign in again (its ended sessions stay ended).
    Enable { email: String },
    /// The account's signed-in browsers and programs, most recently active first.
    Sessions { email: String },
    /// Sign the account out everywhere (it can sign in again).
    EndSessions { email: String },
    /// For an owner who lost both the authenticator app and the recovery codes: turn
    /// the account's second factor off (its recovery codes are deleted), sign it out
    /// everywhere and mail the owner. The password alone signs in afterwards. Check
    /// who is asking first: this undoes what the second factor protects against.
    ResetSecondFactor { email: String },
    /// For an owner who lost a device: remove every passkey of the account (its
    /// password still signs in). Sessions stay; end them with `end-sessions`.
    RemovePasskeys { email: String },
    /// Delete the account for good: every session, app session and token ends at
    /// once, its data goes (devices, consents, second factor), and the owner is mailed.
    /// The address can be registered again afterwards. There is no undo.
    Delete { email: String },
    /// Mark the account's address verified, as if its owner had used the mailed code
    /// (with `--all`, every unverified account's: for a trusted user base, after the
    /// upgrade that made existing accounts unverified).
    Verify {
        #[arg(required_unless_present = "all")]
        email: Option<String>,
        /// Every account whose address is not verified.
        #[arg(long, conflicts_with = "email")]
        all: bool,
    },
    /// The account's activity, newest first: sign-ins, failures, changes, sessions
    /// ended (as the owner sees it at /account/activity).
    Activity { email: String },
}

pub(super) async fn run(parts: &Parts, action: Action, out: Output) -> Result<(), CliError> {
    match action {
        Action::List => list(parts, out).await,
        Action::Show { email } => {
            let user = find(parts, &email).await?;
            let sessions = crate::services::sessions::list(&parts.store, &user.id).await?;
            let mut line = AccountLine::new(&user, Some(sessions.len()));
            let passkeys = parts.accounts.passkeys(&user.id).await?;
            line.passkeys = Some(passkeys.iter().map(PasskeyLine::new).collect());
            out.print(&line);
            Ok(())
        }
        Action::Disable { email } => {
            let user = find(parts, &email).await?;
            let ended =
                crate::services::account_admin::disable(&parts.store, &parts.accounts, &user)
                    .await?;
            out.print(&Changed::new(&user, Some(true), Some(ended)));
            Ok(())
        }
        Action::Enable { email } => {
            let user = find(parts, &email).await?;
            crate::services::account_admin::enable(&parts.accounts, &user).await?;
            out.print(&Changed::new(&user, Some(false), None));
            Ok(())
        }
        Action::Sessions { email } => sessions(parts, &email, out).await,
        Action::EndSessions { email } => {
            let user = find(parts, &email).await?;
            let ended = crate::services::sessions::end_all(&parts.store, &user.id).await?;
            let operator = Event::session_ended(None, EndedBy::Operator);
            if let Some(event) = operator.ended(EndedBy::Operator, ended) {
                record_by_operator(parts, &user, event).await;
            }
            out.print(&Changed::new(&user, None, Some(ended)));
            Ok(())
        }
        Action::ResetSecondFactor { email } => reset_second_factor(parts, &email, out).await,
        Action::Activity { email } => activity(parts, &email, out).await,
        Action::RemovePasskeys { email } => {
            let user = find(parts, &email).await?;
            let removed = parts.accounts.remove_passkeys(&user.id).await?;
            out.print(&PasskeysRemoved {
                id: user.id.to_string(),
                email: user.email.clone(),
                passkeys_removed: removed,
            });
            Ok(())
        }
        Action::Delete { email } => delete(parts, &email, out).await,
        Action::Verify {
            email: Some(email), ..
        } => {
            let user = find(parts, &email).await?;
            let changed = mark_verified(parts, &user).await?;
            out.print(&Verified::new(&user, changed));
            Ok(())
        }
        Action::Verify { email: None, .. } => verify_all(parts, out).await,
    }
}

async fn mark_verified(parts: &Parts, user: &User) -> Result<bool, CliError> {
    let changed =
        crate::services::verification::mark_verified(&parts.store, &parts.accounts, user).await?;
    if changed {
        let verified = Event::new(Kind::EmailVerified).detail("operator");
        record_by_operator(parts, user, verified).await;
    }
    Ok(changed)
}

/// Every unverified account, page by page (the store learns each one too, so live
/// sessions answer `email_verified` at once). One line per account changed.
async fn verify_all(parts: &Parts, out: Output) -> Result<(), CliError> {
    let mut after = String::new();
    loop {
        let page = parts.accounts.list_after(&after, PAGE).await?;
        for user in page.iter().filter(|u| !u.email_verified()) {
            if mark_verified(parts, user).await? {
                out.print(&Verified::new(user, true));
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = last.id.to_string(),
            _ => return Ok(()),
        }
    }
}

/// What `verify` did to an account.
#[derive(Serialize)]
struct Verified {
    id: String,
    email: String,
    email_verified: bool,
    /// False when it was verified already (nothing changed).
    changed: bool,
}

impl Verified {
    fn new(user: &User, changed: bool) -> Verified {
        Verified {
            id: user.id.to_string(),
            email: user.email.clone(),
            email_verified: true,
            changed,
        }
    }
}

impl Line for Verified {
    fn text(&self) -> String {
        match self.changed {
            true => format!("{}: address verified", self.email),
            false => format!("{}: address was verified already", self.email),
        }
    }
}

async fn reset_second_factor(parts: &Parts, email: &str, out: Output) -> Result<(), CliError> {
    let user = find(parts, email).await?;
    let ended =
        crate::services::account_admin::reset_second_factor(&parts.store, &parts.accounts, &user)
            .await?
            .ok_or_else(|| CliError::NoSecondFactor(user.email.clone()))?;
    let off = Event::new(Kind::SecondFactorOff).detail("operator");
    record_by_operator(parts, &user, off).await;
    let operator = Event::session_ended(None, EndedBy::Operator);
    if let Some(event) = operator.ended(EndedBy::Operator, ended) {
        record_by_operator(parts, &user, event).await;
    }
    let mailed = match mail_reset(parts, &user, ended).await {
        Ok(()) => true,
        Err(why) => {
            // The reset stands; the operator tells the owner another way.
            eprintln!("latchkey: warning: the owner could not be mailed: {why}");
            false
        }
    };
    let mut changed = Changed::new(&user, None, Some(ended));
    changed.second_factor = Some(false);
    changed.owner_mailed = Some(mailed);
    out.print(&changed);
    Ok(())
}

async fn delete(parts: &Parts, email: &str, out: Output) -> Result<(), CliError> {
    let user = find(parts, email).await?;
    let ended =
        crate::services::account_admin::delete(&parts.store, &parts.accounts, &user).await?;
    let mailed = match mail_goodbye(parts, &user).await {
        Ok(()) => true,
        Err(why) => {
            eprintln!("latchkey: warning: the owner could not be mailed: {why}");
            false
        }
    };
    let mut changed = Changed::new(&user, None, Some(ended));
    changed.deleted = Some(true);
    changed.owner_mailed = Some(mailed);
    out.print(&changed);
    Ok(())
}

/// Mails the owner of a deleted account, now (the command ends next).
async fn mail_goodbye(parts: &Parts, user: &User) -> Result<(), String> {
    use crate::services::account::mail::{compose, AccountMail, Actor};
    let mailer = crate::mail::Mailer::new(&parts.settings.mail)?;
    let message = compose(
        &parts.settings,
        &mailer,
        &user.email,
        &AccountMail::Deleted,
        &Actor::Operator,
    )
    .map_err(|e| crate::support::report::Report(&e).to_string())?;
    mailer
        .deliver_now(&message)
        .await
        .map_err(|e| crate::support::report::Report(&e).to_string())
}

/// Mails the owner that the second factor was reset, now (the command ends next).
async fn mail_reset(parts: &Parts, user: &User, ended: u32) -> Result<(), String> {
    let notice = crate::services::second_factor::Notice::Reset { ended };
    let (subject, template, ctx) =
        crate::services::second_factor::notice_mail(&parts.settings, notice);
    let mailer = crate::mail::Mailer::new(&parts.settings.mail)?;
    let message = mailer
        .compose(&user.email, subject, template, &ctx)
        .map_err(|e| crate::support::report::Report(&e).to_string())?;
    mailer
        .deliver_now(&message)
        .await
        .map_err(|e| crate::support::report::Report(&e).to_string())
}

/// How many accounts one query reads: the list streams page by page, so a large
/// database is never held in memory at once.
const PAGE: u32 = 500;

async fn list(parts: &Parts, out: Output) -> Result<(), CliError> {
    out.header(&format!(
        "{:36}  {:20}  {:8}  EMAIL",
        "ID", "CREATED", "STATUS"
    ));
    let mut after = String::new();
    loop {
        let page = parts.accounts.list_after(&after, PAGE).await?;
        for user in &page {
            out.print(&AccountLine::new(user, None));
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = last.id.to_string(),
            _ => return Ok(()),
        }
    }
}

/// Records what the operator did to the account in its activity log.
async fn record_by_operator(parts: &Parts, user: &User, event: Event) {
    activity::record_in(&parts.accounts, &parts.settings.activity, &user.id, event).await;
}

async fn activity(parts: &Parts, email: &str, out: Output) -> Result<(), CliError> {
    let user = find(parts, email).await?;
    out.header(&format!(
        "{:20}  {:18}  {:15}  {:24}  WHAT",
        "AT", "TYPE", "IP", "LABEL"
    ));
    let mut before = None;
    loop {
        let page = activity::page(
            &parts.accounts,
            &parts.settings.activity,
            &user.id,
            before,
            activity::MAX_LIMIT,
        )
        .await?;
        for event in &page.events {
            out.print(&EventLine(event));
        }
        match page.next.as_deref().and_then(activity::parse_cursor) {
            Some(next) => before = Some(next),
            None => return Ok(()),
        }
    }
}

/// One event, as the API shows it (`--json`) or one line of text.
struct EventLine<'a>(&'a EventView);

impl Serialize for EventLine<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Line for EventLine<'_> {
    fn text(&self) -> String {
        let e = self.0;
        format!(
            "{:20}  {:18}  {:15}  {:24}  {}",
            e.at,
            e.kind,
            e.ip,
            e.label,
            e.summary()
        )
    }
}

async fn sessions(parts: &Parts, email: &str, out: Output) -> Result<(), CliError> {
    let user = find(parts, email).await?;
    out.header(&format!(
        "{:22}  {:7}  {:20}  {:20}  {:15}  LABEL",
        "ID", "KIND", "SIGNED IN", "LAST ACTIVE", "IP"
    ));
    for session in crate::services::sessions::list(&parts.store, &user.id).await? {
        out.print(&SessionLine::new(&session));
    }
    Ok(())
}

/// The account with this address, or a clear error.
async fn find(parts: &Parts, email: &str) -> Result<User, CliError> {
    let address =
        Email::parse(email).map_err(|why| CliError::NotAnAddress(email.to_string(), why))?;
    parts
        .accounts
        .find_by_email(&address)
        .await?
        .ok_or_else(|| CliError::NoSuchAccount(address.as_str().to_string()))
}

/// An account: a row of `list`, or `show` (with its number of live sessions).
#[derive(Serialize)]
struct AccountLine {
    id: String,
    email: String,
    created_at: String,
    password_changed_at: String,
    /// `null` while the account may sign in.
    disabled_at: Option<String>,
    email_verified: bool,
    /// `null` while the address is not verified.
    email_verified_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<usize>,
    /// `show` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    passkeys: Option<Vec<PasskeyLine>>,
}

/// One passkey of an account, as `show` lists it.
#[derive(Serialize)]
struct PasskeyLine {
    id: String,
    name: String,
    created_at: String,
    last_used_at: Option<String>,
    /// Backup eligible: synced between the owner's devices.
    synced: bool,
    /// Its counter went backwards once (a copy?): refused since.
    cloned: bool,
}

impl PasskeyLine {
    fn new(row: &crate::accounts::PasskeyRow) -> PasskeyLine {
        PasskeyLine {
            id: row.id.clone(),
            name: row.name.clone(),
            created_at: iso_time(row.created_at),
            last_used_at: row.last_used_at.map(iso_time),
            synced: row.synced == 1,
            cloned: row.cloned_at.is_some(),
        }
    }

    fn text(&self) -> String {
        let used = match &self.last_used_at {
            Some(at) => format!("last used {at}"),
            None => "never used".into(),
        };
        let kind = if self.synced {
            "synced"
        } else {
            "device-bound"
        };
        let cloned = if self.cloned {
            ", REFUSED (counter went backwards)"
        } else {
            ""
        };
        format!(
            "\n  {}  added {}, {used}, {kind}{cloned}: {}",
            self.id, self.created_at, self.name
        )
    }
}

/// What `remove-passkeys` did.
#[derive(Serialize)]
struct PasskeysRemoved {
    id: String,
    email: String,
    passkeys_removed: u64,
}

impl Line for PasskeysRemoved {
    fn text(&self) -> String {
        match self.passkeys_removed {
            1 => format!("{}: 1 passkey removed", self.email),
            n => format!("{}: {n} passkeys removed", self.email),
        }
    }
}

impl AccountLine {
    fn new(user: &User, sessions: Option<usize>) -> AccountLine {
        AccountLine {
            id: user.id.to_string(),
            email: user.email.clone(),
            created_at: iso_time(user.created_at),
            password_changed_at: iso_time(user.password_changed_at),
            disabled_at: user.disabled_at.map(iso_time),
            email_verified: user.email_verified(),
            email_verified_at: user.email_verified_at.map(iso_time),
            sessions,
            passkeys: None,
        }
    }

    fn status(&self) -> &'static str {
        match self.disabled_at {
            Some(_) => "disabled",
            None => "active",
        }
    }
}

impl Line for AccountLine {
    fn text(&self) -> String {
        let Some(sessions) = self.sessions else {
            return format!(
                "{:36}  {:20}  {:8}  {}",
                self.id,
                self.created_at,
                self.status(),
                self.email
            );
        };
        let status = match &self.disabled_at {
            Some(at) => format!("disabled since {at}"),
            None => "active".into(),
        };
        let verified = match &self.email_verified_at {
            Some(at) => format!("yes, since {at}"),
            None => "no".into(),
        };
        let passkeys = self.passkeys.as_deref().unwrap_or_default();
        let listed: String = passkeys.iter().map(PasskeyLine::text).collect();
        format!(
            "email:            {}\nverified:         {verified}\nid:               {}\n\
             created:          {}\npassword changed: {}\nstatus:           {status}\n\
             sessions:         {sessions}\npasskeys:         {}{listed}",
            self.email,
            self.id,
            self.created_at,
            self.password_changed_at,
            passkeys.len()
        )
    }
}

/// What `disable`, `enable`, `end-sessions` or `reset-second-factor` did to an account.
#[derive(Serialize)]
struct Changed {
    id: String,
    email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled: Option<bool>,
    /// `false` after `reset-second-factor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    second_factor: Option<bool>,
    /// `true` after `delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions_ended: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_mailed: Option<bool>,
}

impl Changed {
    fn new(user: &User, disabled: Option<bool>, sessions_ended: Option<u32>) -> Changed {
        Changed {
            id: user.id.to_string(),
            email: user.email.clone(),
            disabled,
            second_factor: None,
            deleted: None,
            sessions_ended,
            owner_mailed: None,
        }
    }
}

impl Line for Changed {
    fn text(&self) -> String {
        let state = match (self.disabled, self.second_factor, self.deleted) {
            (_, _, Some(true)) => " is deleted",
            (Some(true), _, _) => " is disabled",
            (Some(false), _, _) => " is enabled",
            (None, Some(false), _) => ": second factor turned off",
            _ => "",
        };
        let joint = if state.is_empty() { ":" } else { ";" };
        let ended = match self.sessions_ended {
            Some(1) => format!("{joint} 1 session ended"),
            Some(n) => format!("{joint} {n} sessions ended"),
            None => String::new(),
        };
        let mailed = match self.owner_mailed {
            Some(true) => "; owner mailed",
            Some(false) => "; the owner could NOT be mailed",
            None => "",
        };
        format!("{}{state}{ended}{mailed}", self.email)
    }
}

/// One live session of the account.
#[derive(Serialize)]
struct SessionLine {
    id: String,
    kind: &'static str,
    label: String,
    ip: String,
    created_at: String,
    last_seen_at: String,
}

impl SessionLine {
    fn new(s: &SessionRecord) -> SessionLine {
        SessionLine {
            id: s.sid.clone(),
            kind: s.kind.as_str(),
            // Cleaned as shown, like the devices page: a session stored before the
            // label rule may carry any text.
            label: crate::support::input::Label::lossy(&s.label)
                .map(|l| l.to_string())
                .unwrap_or_default(),
            ip: s.ip.clone(),
            created_at: iso_time(s.created_ms),
            last_seen_at: iso_time(s.seen_ms),
        }
    }
}

impl Line for SessionLine {
    fn text(&self) -> String {
        format!(
            "{:22}  {:7}  {:20}  {:20}  {:15}  {}",
            self.id, self.kind, self.created_at, self.last_seen_at, self.ip, self.label
        )
    }
}
