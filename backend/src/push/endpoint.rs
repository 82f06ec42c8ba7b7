//! Which push endpoints the server will POST to: https on a known push service (or a configured host) only,
//! never an address, so a subscription cannot aim the server at the metadata service or the private network.

/// The push services browsers use: Apple, Google (Chrome, Edge on Android), Mozilla, Microsoft.
const PUSH_SERVICES: [&str; 5] = [
    "push.apple.com",
    "fcm.googleapis.com",
    "android.googleapis.com",
    "push.services.mozilla.com",
    "notify.windows.com",
];

/// Longest endpoint accepted.
const MAX_ENDPOINT: usize = 2048;

/// The allowlist.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    /// Extra hosts (exact, or a parent domain).
    pub hosts: Vec<String>,
    /// Testing only: one plain-http origin allowed as is.
    pub insecure_origin: Option<String>,
}

impl Allowlist {
    /// The endpoint as a URL if the server may send to it; otherwise why not.
    pub fn check(&self, endpoint: &str) -> Result<url::Url, String> {
        if endpoint.len() > MAX_ENDPOINT {
            return Err(format!("at most {MAX_ENDPOINT} bytes"));
        }
        let url = url::Url::parse(endpoint).map_err(|err| format!("not a URL: {err}"))?;
        if self.insecure_origin.as_deref() == Some(url.origin().ascii_serialization().as_str()) {
            return Ok(url);
        }
        if url.scheme() != "https" {
            return Err("must be https".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".into());
        }
        let host = match url.host() {
            Some(url::Host::Domain(host)) => host.to_ascii_lowercase(),
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
                return Err("must name a push service, not an address".into());
            }
            None => return Err("has no host".into()),
        };
        let allowed = PUSH_SERVICES
            .iter()
            .copied()
            .chain(self.hosts.iter().map(String::as_str))
            .any(|service| host == service || host.ends_with(&format!(".{service}")));
        if !allowed {
            return Err(format!(
                "{host} is not a known push service (Apple, Google, Mozilla, Microsoft, or --push-host)"
            ));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_push_services_over_https() {
        let list = Allowlist {
            hosts: vec!["push.example.org".into()],
            insecure_origin: Some("http://127.0.0.1:4000".into()),
        };
        for good in [
            "https://web.push.apple.com/QGuQyavXutnMH",
            "https://fcm.googleapis.com/fcm/send/abc:def",
            "https://updates.push.services.mozilla.com/wpush/v2/gAAA",
            "https://wns2-par02p.notify.windows.com/w/?token=x",
            "https://push.example.org/x",
            "http://127.0.0.1:4000/push/1",
        ] {
            assert!(list.check(good).is_ok(), "{good}");
        }
        for bad in [
            "http://fcm.googleapis.com/fcm/send/x",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/push",
            "https://[::1]/push",
            "https://evil.example.com/push",
            "https://fcm.googleapis.com.evil.example/x",
            "https://user:pass@fcm.googleapis.com/x",
            "http://127.0.0.1:4001/push/1",
            "not a url",
        ] {
            assert!(list.check(bad).is_err(), "{bad}");
        }
    }
}
