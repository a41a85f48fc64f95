//! An error with every cause, on one line, for logs: "the session store is unavailable:
//! Redis command failed: Connection refused (os error 111)". Errors keep their causes as
//! `source()`; this is where the chain is read, once, when it is logged.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its sources, separated by `: `.
pub struct Report<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Report;

    #[derive(Debug, thiserror::Error)]
    #[error("could not sign in")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("the store did not answer")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn every_cause_is_named_once_in_order() {
        let e = Outer(Inner(std::io::Error::other("connection refused")));
        assert_eq!(
            Report(&e).to_string(),
            "could not sign in: the store did not answer: connection refused"
        );
    }
}
