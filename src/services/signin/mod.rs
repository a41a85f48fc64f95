//! Signing in and what guards it: the password step (`password`: check, sign in,
//! start the session, replace a password), the second step for an account with a
//! second factor (`two_step`), browsers trusted after a sign-in (`trusted_browsers`),
//! the named rate-limit quotas (`limits`), the new-device mail (`new_device`) and
//! password-reset codes (`password_reset`).

pub mod limits;
pub mod new_device;
pub mod password;
pub mod password_reset;
pub mod trusted_browsers;
pub mod two_step;

pub use self::password::{
    check_password, replace_password, sign_in, start_session, Credentials, Passed, SessionStart,
    SignIn, SignInError, SignedIn, Verified,
};
