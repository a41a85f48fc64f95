//! Rocket's figment with the request data limits as code defaults, and where the
//! templates and the stylesheet are found.

use std::path::{Path, PathBuf};

use rocket::figment::Figment;

/// Where `templates/` and `static/` are: the working directory when it holds them (a
/// deployment), else the source tree the binary was built from (so `target/release/latchkey`
/// started from anywhere on the build machine still finds its pages).
pub fn asset_root() -> PathBuf {
    let has_assets =
        |dir: &Path| dir.join("templates/pages").is_dir() && dir.join("static").is_dir();
    let here = PathBuf::from(".");
    if has_assets(&here) {
        return here;
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if has_assets(&built) {
        built
    } else {
        here
    }
}

/// Checks that the page templates, mail templates and stylesheet can be found.
pub fn check_assets(root: &Path) -> Result<(), String> {
    for dir in ["templates/pages", "templates/mail", "static"] {
        if !root.join(dir).is_dir() {
            return Err(format!(
                "the `{dir}` directory is missing from {}: start latchkey from the directory \
                 that holds `templates/` and `static/`",
                std::fs::canonicalize(root)
                    .unwrap_or_else(|_| root.to_path_buf())
                    .display()
            ));
        }
    }
    Ok(())
}

/// Request body limits (Rocket's `limits`): also the most of a body the server loop
/// reads before the route runs (`src/server`). Nothing here takes uploads, so none is
/// above 64 KiB; a multipart form (`data-form`) is held to the same 32 KiB as a
/// url-encoded one. Rocket's own defaults (2 MiB multipart, 1 MiB JSON) would apply to
/// a binary started where no `Rocket.toml` is found, so these are set here, under
/// `Rocket.toml` and `ROCKET_LIMITS`, which may still change them.
pub const DATA_LIMITS: [(&str, &str); 5] = [
    ("form", "32 KiB"),
    ("data-form", "32 KiB"),
    ("json", "32 KiB"),
    ("file", "64 KiB"),
    ("msgpack", "64 KiB"),
];

/// Rocket's figment (its defaults, then [`DATA_LIMITS`], then `Rocket.toml` and
/// `ROCKET_*`, as `rocket::Config::figment` reads them) plus `LATCHKEY_*` from the
/// environment.
pub fn figment() -> Figment {
    use rocket::figment::providers::{Env, Format, Toml};
    use rocket::figment::Profile;
    let limits: std::collections::BTreeMap<&str, &str> = DATA_LIMITS.into_iter().collect();
    Figment::from(rocket::Config::default())
        .merge(("limits", limits))
        .merge(Toml::file(Env::var_or("ROCKET_CONFIG", "Rocket.toml")).nested())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(Profile::from_env_or(
            "ROCKET_PROFILE",
            rocket::Config::DEFAULT_PROFILE,
        ))
        .merge(Env::prefixed("LATCHKEY_").global())
        // Page templates live in templates/pages; mail templates beside them in templates/mail.
        .join(("template_dir", asset_root().join("templates/pages")))
}
