//! JWT access tokens and refresh-token rotation.
