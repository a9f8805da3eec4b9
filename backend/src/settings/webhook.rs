//! Webhooks: the admin allow-list, delivery limits and the test-only host map (docs/design/notifications.md
//! §6 and §9).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    str::FromStr,
    time::Duration,
};

use super::{AppEnv, IpNet, reader::Reader};

/// One entry of `WEBHOOK_ALLOW_HOSTS`: `host`, `host:port` or a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// A host name or IP literal, with an optional port (any port when `None`).
    Host { host: String, port: Option<u16> },
    /// Every address in a network, any port.
    Net(IpNet),
}

impl FromStr for AllowEntry {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty entry".into());
        }
        if s.contains('/') {
            return s.parse::<IpNet>().map(AllowEntry::Net);
        }
        // `[v6]:port`, `[v6]`, a bare v6 address, `host:port`, `host`.
        if let Some(rest) = s.strip_prefix('[') {
            let (addr, tail) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: missing `]`"))?;
            let ip: Ipv6Addr = addr
                .parse()
                .map_err(|_| format!("`{s}`: bad IPv6 address"))?;
            let port = match tail {
                "" => None,
                t => Some(parse_port(s, t.strip_prefix(':').unwrap_or(t))?),
            };
            return Ok(AllowEntry::Host {
                host: ip.to_string(),
                port,
            });
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(AllowEntry::Host {
                host: ip.to_string(),
                port: None,
            });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(parse_port(s, p)?)),
            None => (s, None),
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '@' || c == '/') {
            return Err(format!("`{s}` is not a host, host:port or CIDR network"));
        }
        Ok(AllowEntry::Host {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

fn parse_port(entry: &str, p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{entry}`: bad port"))
}

/// Chat and generic webhooks (see `backend::notify::webhook`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `WEBHOOK_ALLOW_HOSTS`: destinations that skip the private-address check (still pinned, never
    /// redirected), and may use plain `http` in production.
    pub allow_hosts: Vec<AllowEntry>,
    /// `WEBHOOK_TIMEOUT_SECS`: the whole request of one attempt.
    pub timeout: Duration,
    /// `WEBHOOK_DISABLE_AFTER`: consecutive failed deliveries that disable a webhook.
    pub disable_after: i32,
    /// `WEBHOOK_MAX_PER_USER`.
    pub max_per_user: i64,
    /// `WEBHOOK_RATE_PER_MIN`: requests per minute to one generic destination.
    pub rate_per_min: u64,
    /// `WEBHOOK_TEST_HOSTS` (`name=ip,…`): names resolved without DNS. Accepted only with `APP_ENV=test`;
    /// any other environment refuses to start with it set.
    pub test_hosts: HashMap<String, Vec<IpAddr>>,
}

/// `WEBHOOK_*`.
pub(super) fn parse(r: &mut Reader<'_>, app_env: AppEnv) -> WebhookSettings {
    let mut allow_hosts = Vec::new();
    if let Some(list) = r.raw("WEBHOOK_ALLOW_HOSTS") {
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.parse::<AllowEntry>() {
                Ok(e) => allow_hosts.push(e),
                Err(e) => r.problem("WEBHOOK_ALLOW_HOSTS", e),
            }
        }
    }
    let mut test_hosts: HashMap<String, Vec<IpAddr>> = HashMap::new();
    if let Some(list) = r.raw("WEBHOOK_TEST_HOSTS") {
        if app_env == AppEnv::Test {
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                match entry
                    .split_once('=')
                    .and_then(|(n, ip)| Some((n.trim(), ip.trim().parse::<IpAddr>().ok()?)))
                {
                    Some((name, ip)) if !name.is_empty() => {
                        test_hosts
                            .entry(name.to_ascii_lowercase())
                            .or_default()
                            .push(ip);
                    }
                    _ => r.problem("WEBHOOK_TEST_HOSTS", format!("`{entry}` is not name=ip")),
                }
            }
        } else {
            r.problem("WEBHOOK_TEST_HOSTS", "only allowed with APP_ENV=test");
        }
    }
    WebhookSettings {
        allow_hosts,
        timeout: r.seconds("WEBHOOK_TIMEOUT_SECS", 10.0, 1.0, 60.0),
        disable_after: r.bounded("WEBHOOK_DISABLE_AFTER", 5i32, 1, 1000),
        max_per_user: r.bounded("WEBHOOK_MAX_PER_USER", 10i64, 1, 1000),
        rate_per_min: r.bounded("WEBHOOK_RATE_PER_MIN", 60u64, 1, 100_000),
        test_hosts,
    }
}
