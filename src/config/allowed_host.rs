//! One `forward_auth_domains` entry (`AllowedHost`), parsed as the host of a URL so it
//! is normalised exactly as the `rd` it is checked against
//! (`crate::services::return_to`).

use url::{Host, Url};

/// One `forward_auth_domains` entry: a host (a DNS name or an IP address), exact or, with
/// a leading dot, every name under it (`.example.com` matches `app.example.com`, not
/// `example.com` and not `badexample.com`). An optional port: `host:8443` only that
/// port, `host:*` any port; without one only the scheme's default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// Normalised as `url` normalises a URL's host (lower case, punycode).
    host: String,
    subdomains: bool,
    port: PortRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortRule {
    Default,
    Exactly(u16),
    Any,
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<AllowedHost, String> {
        let entry = entry.trim();
        let wrong = || {
            format!("{entry:?} is not a host (example.com or .example.com, optionally :port or :*)")
        };
        let (subdomains, rest) = match entry.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let (host, port) = split_port(rest).ok_or_else(wrong)?;
        // Parsed as the host of a URL, so it is normalised exactly as `rd`'s host is.
        let url = Url::parse(&format!("https://{host}/")).map_err(|_| wrong())?;
        let parsed = url.host_str().ok_or_else(wrong)?.to_string();
        let is_name = matches!(url.host(), Some(Host::Domain(_)));
        if host.is_empty()
            || host.contains(['/', '@', '*', '?', '#', '\\'])
            || parsed.ends_with('.')
        {
            return Err(wrong());
        }
        if subdomains && !is_name {
            return Err(format!("{entry:?}: only a DNS name can have sub-domains"));
        }
        Ok(AllowedHost {
            host: parsed,
            subdomains,
            port,
        })
    }

    /// Whether `url`'s host and port are this entry's.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host_ok = if self.subdomains {
            matches!(url.host(), Some(Host::Domain(_)))
                && host
                    .strip_suffix(self.host.as_str())
                    .is_some_and(|label| label.len() > 1 && label.ends_with('.'))
        } else {
            host == self.host
        };
        let port_ok = match self.port {
            PortRule::Default => url.port().is_none(),
            PortRule::Exactly(p) => url.port_or_known_default() == Some(p),
            PortRule::Any => true,
        };
        host_ok && port_ok
    }
}

/// `host`, `host:port`, `host:*`, `[v6]:port`: the host and its port rule.
fn split_port(s: &str) -> Option<(&str, PortRule)> {
    let (host, port) = match s.rsplit_once(':') {
        // An IPv6 address without a port: its colons are inside the brackets.
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (s, None),
    };
    let rule = match port {
        None => PortRule::Default,
        Some("*") => PortRule::Any,
        Some(p) => PortRule::Exactly(p.parse().ok().filter(|p| *p > 0)?),
    };
    Some((host, rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_refuse_what_is_not_a_host() {
        for bad in [
            "*.good.com",
            "good.com/app",
            "user@good.com",
            "",
            ".",
            "good.com.",
            ".127.0.0.1",
            "good.com:0",
            "good.com:x",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad:?}");
        }
        let upper = AllowedHost::parse("GOOD.com").expect("upper case");
        assert_eq!(upper, AllowedHost::parse("good.com").expect("lower case"));
    }
}
