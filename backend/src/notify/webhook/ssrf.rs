//! Where a webhook may point (docs/design/notifications.md §6, "SSRF"). Checked when a webhook is created or
//! tested and again before **every** attempt:
//!
//! 1. the URL: `https` (plain `http` only outside production or for allow-listed hosts), no userinfo, a host,
//!    no `localhost`;
//! 2. resolve once: an IP literal as is, else the test host map (`APP_ENV=test` only), else DNS;
//! 3. vet every address ([`forbidden`]): one bad address refuses the URL (no filtering and continuing);
//! 4. pin: [`NetGuard::client`] builds a one-off `reqwest::Client` that connects only to the vetted addresses
//!    (no second lookup, so no DNS rebinding), follows no redirect and uses no proxy.
//!
//! `WEBHOOK_ALLOW_HOSTS` (admins) lets a matching host, or an address matching an IP (`ip:port`) or CIDR entry,
//! skip step 3; it is still pinned and never redirected.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::RwLock,
    time::Duration,
};

use url::{Host, Url};

pub use crate::settings::AllowEntry;

/// Why a destination is refused. The message is safe to show to the webhook's owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("is not a valid URL")]
    Invalid,
    #[error("must use https://")]
    Scheme,
    #[error("must not contain a user name or password")]
    Userinfo,
    #[error("must name a host")]
    NoHost,
    #[error("points at a private or loopback address")]
    Forbidden,
    #[error("does not resolve to any address")]
    Unresolvable,
}

/// How strict the guard is. Built from the settings (`WEBHOOK_*`, `APP_ENV`).
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Plain `http://` is accepted for any host (never in production: [`GuardConfig::new`] clears it).
    pub allow_http: bool,
    /// The admin allow-list.
    pub allow_hosts: Vec<AllowEntry>,
    /// `name → addresses` consulted before DNS; only honoured with `APP_ENV=test`.
    pub test_hosts: HashMap<String, Vec<IpAddr>>,
    /// Whether this is a test deployment (enables `test_hosts` and [`NetGuard::set_test_host`]).
    pub test_mode: bool,
    /// Whole-request timeout of a delivery attempt.
    pub timeout: Duration,
}

impl GuardConfig {
    /// The configuration for an environment. Production never allows plain `http` (except allow-listed
    /// hosts) and never honours test hosts, whatever the caller passes.
    pub fn new(
        app_env: crate::settings::AppEnv,
        allow_hosts: Vec<AllowEntry>,
        test_hosts: HashMap<String, Vec<IpAddr>>,
        timeout: Duration,
    ) -> Self {
        use crate::settings::AppEnv;
        let test_mode = app_env == AppEnv::Test;
        Self {
            allow_http: app_env != AppEnv::Production,
            allow_hosts,
            test_hosts: if test_mode {
                test_hosts
            } else {
                HashMap::new()
            },
            test_mode,
            timeout,
        }
    }
}

/// A destination that passed the checks: where to connect, pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vetted {
    pub url: Url,
    /// The host name to pin (`None` for an IP literal: nothing to resolve).
    pub domain: Option<String>,
    /// Every address the host resolved to, with the URL's port.
    pub addrs: Vec<SocketAddr>,
}

/// The SSRF guard shared by the actions and the delivery job (`Arc<NetGuard>` in `Ctx`).
#[derive(Debug)]
pub struct NetGuard {
    config: GuardConfig,
    test_hosts: RwLock<HashMap<String, Vec<IpAddr>>>,
}

impl NetGuard {
    /// The guard of a deployment's settings.
    pub fn from_settings(s: &crate::settings::Settings) -> Self {
        Self::new(GuardConfig::new(
            s.app_env,
            s.webhook.allow_hosts.clone(),
            s.webhook.test_hosts.clone(),
            s.webhook.timeout,
        ))
    }

    pub fn new(config: GuardConfig) -> Self {
        let test_hosts = RwLock::new(config.test_hosts.clone());
        Self { config, test_hosts }
    }

    /// The whole-request timeout of an attempt.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// Re-points a test host name (tests only: between create and delivery, to exercise the re-check).
    ///
    /// # Panics
    /// Outside `APP_ENV=test`: no production path may change name resolution.
    pub fn set_test_host(&self, name: &str, addrs: Vec<IpAddr>) {
        assert!(
            self.config.test_mode,
            "set_test_host is only available with APP_ENV=test"
        );
        self.test_hosts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_ascii_lowercase(), addrs);
    }

    /// Step 1: parses and checks the URL without resolving it.
    ///
    /// # Errors
    /// A [`Refusal`] saying what is wrong.
    pub fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
        let url = Url::parse(raw.trim()).map_err(|_| Refusal::Invalid)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Userinfo);
        }
        let host = url.host().ok_or(Refusal::NoHost)?;
        if let Host::Domain(d) = &host {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() {
                return Err(Refusal::NoHost);
            }
            if d == "localhost" || d.ends_with(".localhost") {
                return Err(Refusal::Forbidden);
            }
        }
        match url.scheme() {
            "https" => {}
            "http" if self.config.allow_http || self.host_allowed(&url) => {}
            _ => return Err(Refusal::Scheme),
        }
        Ok(url)
    }

    /// Steps 1 to 3: checks the URL, resolves it once and vets every address.
    ///
    /// # Errors
    /// A [`Refusal`]; [`Refusal::Forbidden`] when any address is off limits.
    pub async fn vet(&self, raw: &str) -> Result<Vetted, Refusal> {
        let url = self.check_url(raw)?;
        let port = url.port_or_known_default().ok_or(Refusal::Invalid)?;
        let (domain, ips): (Option<String>, Vec<IpAddr>) = match url.host() {
            Some(Host::Ipv4(ip)) => (None, vec![IpAddr::V4(ip)]),
            Some(Host::Ipv6(ip)) => (None, vec![IpAddr::V6(ip)]),
            Some(Host::Domain(d)) => {
                let name = d.trim_end_matches('.').to_ascii_lowercase();
                let ips = self.resolve(&name, port).await?;
                (Some(d.to_owned()), ips)
            }
            None => return Err(Refusal::NoHost),
        };
        if ips.is_empty() {
            return Err(Refusal::Unresolvable);
        }
        let host_ok = self.host_allowed(&url);
        for ip in &ips {
            if forbidden(*ip) && !host_ok && !self.addr_allowed(*ip, port) {
                return Err(Refusal::Forbidden);
            }
        }
        Ok(Vetted {
            addrs: ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            url,
            domain,
        })
    }

    async fn resolve(&self, name: &str, port: u16) -> Result<Vec<IpAddr>, Refusal> {
        if self.config.test_mode {
            let map = self
                .test_hosts
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(ips) = map.get(name) {
                return Ok(ips.clone());
            }
        }
        let addrs = tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| Refusal::Unresolvable)?;
        let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
        ips.dedup();
        Ok(ips)
    }

    fn host_allowed(&self, url: &Url) -> bool {
        let Some(host) = url.host() else { return false };
        let host = match host {
            Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        };
        let port = url.port_or_known_default();
        self.config.allow_hosts.iter().any(|e| match e {
            AllowEntry::Host { host: h, port: p } => {
                *h == host && p.is_none_or(|p| Some(p) == port)
            }
            AllowEntry::Net(n) => host.parse::<IpAddr>().is_ok_and(|ip| n.contains(ip)),
        })
    }

    /// Whether an address (whatever name led to it) is allow-listed: inside a CIDR entry, or equal to an IP
    /// entry (and its port, when the entry has one).
    fn addr_allowed(&self, ip: IpAddr, port: u16) -> bool {
        self.config.allow_hosts.iter().any(|e| match e {
            AllowEntry::Net(n) => n.contains(ip),
            AllowEntry::Host { host, port: p } => {
                host.parse::<IpAddr>().is_ok_and(|h| h == ip) && p.is_none_or(|p| p == port)
            }
        })
    }

    /// Step 4: a one-off client pinned to the vetted addresses: no redirects, no proxy, `https` only in
    /// production (unless the host is allow-listed), a 5-second connect timeout and the attempt timeout.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn client(&self, vetted: &Vetted) -> reqwest::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(!self.config.allow_http && !self.host_allowed(&vetted.url))
            .connect_timeout(Duration::from_secs(5))
            .timeout(self.config.timeout)
            .pool_max_idle_per_host(0)
            .user_agent(concat!("Vortex-Webhooks/", env!("CARGO_PKG_VERSION")));
        if let Some(domain) = &vetted.domain {
            b = b.resolve_to_addrs(domain, &vetted.addrs);
        }
        b.build()
    }
}

fn v4_in(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn v6_in(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    u128::from(ip) & mask == u128::from(net) & mask
}

/// Whether an IPv4 address is off limits: unspecified/"this network" 0/8, private 10/8, 172.16/12,
/// 192.168/16, CGNAT 100.64/10 (Alibaba's metadata 100.100.100.200), loopback 127/8, link-local 169.254/16
/// (cloud metadata 169.254.169.254), IETF 192.0.0/24, documentation 192.0.2/24, 198.51.100/24, 203.0.113/24,
/// the 6to4 relay 192.88.99/24, benchmarking 198.18/15, multicast 224/4, reserved 240/4 and broadcast.
pub fn forbidden_v4(ip: Ipv4Addr) -> bool {
    const NETS: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 24),
        ([192, 0, 2, 0], 24),
        ([192, 88, 99, 0], 24),
        ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
    ];
    NETS.iter().any(|(n, p)| v4_in(ip, *n, *p))
}

/// The IPv4 address an IPv6 address carries, for the forms that route to it: IPv4-mapped `::ffff:0:0/96`,
/// IPv4-compatible `::/96` (deprecated), NAT64 `64:ff9b::/96` and 6to4 `2002::/16`.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if v6_in(ip, Ipv6Addr::UNSPECIFIED, 96)
        || v6_in(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)
    {
        return Some(low32);
    }
    if v6_in(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

/// Whether an IPv6 address is off limits: `::` and `::1`, unique-local `fc00::/7` (AWS metadata
/// `fd00:ec2::254`), link-local `fe80::/10`, site-local `fec0::/10`, multicast `ff00::/8`, documentation
/// `2001:db8::/32`, discard `100::/64`, Teredo `2001::/32`, local NAT64 `64:ff9b:1::/48`; and the forms
/// carrying an IPv4 address ([`embedded_v4`]) are judged by that address.
pub fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    let nets: [(Ipv6Addr, u32); 8] = [
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
        (Ipv6Addr::new(0x0100, 0, 0, 0, 0, 0, 0, 0), 64),
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32),
        (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
    ];
    nets.iter().any(|(n, p)| v6_in(ip, *n, *p))
}

/// Whether a webhook may never connect to `ip` (unless allow-listed).
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::AppEnv;

    fn guard(env: AppEnv, allow: &[&str], test_hosts: &[(&str, &str)]) -> NetGuard {
        NetGuard::new(GuardConfig::new(
            env,
            allow.iter().map(|a| a.parse().unwrap()).collect(),
            test_hosts
                .iter()
                .map(|(n, ip)| ((*n).to_owned(), vec![ip.parse().unwrap()]))
                .collect(),
            Duration::from_secs(10),
        ))
    }

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.5",
            "10.255.255.255",
            "100.64.0.1",
            "100.100.100.200",
            "100.127.255.255",
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff05::2",
            "2001:db8::1",
            "100::1",
            "2001::1",
            "64:ff9b:1::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "::10.1.1.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "2002:c0a8:101::1",
        ] {
            assert!(forbidden(ip.parse().unwrap()), "{ip} should be refused");
        }
    }

    #[test]
    fn public_addresses() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.255.255",
            "169.255.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "192.167.255.255",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "fbff::1",
        ] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn embedded_forms() {
        let v4 = |s: &str| Some(s.parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            embedded_v4("::ffff:1.2.3.4".parse().unwrap()),
            v4("1.2.3.4")
        );
        assert_eq!(
            embedded_v4("64:ff9b::102:304".parse().unwrap()),
            v4("1.2.3.4")
        );
        assert_eq!(
            embedded_v4("2002:102:304::".parse().unwrap()),
            v4("1.2.3.4")
        );
        assert_eq!(embedded_v4("::1.2.3.4".parse().unwrap()), v4("1.2.3.4"));
        assert_eq!(embedded_v4("2606:4700::1".parse().unwrap()), None);
    }

    #[test]
    fn url_rules_in_production() {
        let g = guard(AppEnv::Production, &[], &[]);
        assert_eq!(g.check_url("http://example.com/x"), Err(Refusal::Scheme));
        assert_eq!(g.check_url("ftp://example.com/x"), Err(Refusal::Scheme));
        assert_eq!(g.check_url("not a url"), Err(Refusal::Invalid));
        assert_eq!(
            g.check_url("https://user:pw@example.com/x"),
            Err(Refusal::Userinfo)
        );
        assert_eq!(
            g.check_url("https://user@example.com/x"),
            Err(Refusal::Userinfo)
        );
        assert_eq!(g.check_url("https://localhost/x"), Err(Refusal::Forbidden));
        assert_eq!(g.check_url("https://LOCALHOST./x"), Err(Refusal::Forbidden));
        assert_eq!(
            g.check_url("https://a.b.localhost/x"),
            Err(Refusal::Forbidden)
        );
        assert!(
            g.check_url("https://hooks.slack.com/services/T/B/x")
                .is_ok()
        );
    }

    #[test]
    fn http_outside_production_and_for_allow_listed_hosts() {
        assert!(
            guard(AppEnv::Development, &[], &[])
                .check_url("http://example.com")
                .is_ok()
        );
        assert!(
            guard(AppEnv::Test, &[], &[])
                .check_url("http://example.com")
                .is_ok()
        );
        let g = guard(AppEnv::Production, &["hooks.internal:8080"], &[]);
        assert!(g.check_url("http://hooks.internal:8080/x").is_ok());
        assert_eq!(g.check_url("http://hooks.internal/x"), Err(Refusal::Scheme));
    }

    #[test]
    fn production_ignores_test_hosts() {
        let g = guard(AppEnv::Production, &[], &[("sink.test", "8.8.8.8")]);
        assert!(!g.config.test_mode);
        assert!(g.config.test_hosts.is_empty());
        let r = std::panic::catch_unwind(|| g.set_test_host("x.test", vec![]));
        assert!(r.is_err(), "set_test_host must refuse outside APP_ENV=test");
        let dev = guard(AppEnv::Development, &[], &[("sink.test", "8.8.8.8")]);
        assert!(dev.config.test_hosts.is_empty());
    }

    #[tokio::test]
    async fn literal_and_normalised_hosts_are_vetted() {
        let g = guard(AppEnv::Test, &[], &[]);
        for url in [
            "http://127.0.0.1:9/x",
            "http://10.0.0.5/",
            "http://169.254.169.254/latest/meta-data",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::]/",
            "https://100.100.100.200/",
        ] {
            assert_eq!(g.vet(url).await, Err(Refusal::Forbidden), "{url}");
        }
        let ok = g.vet("https://93.184.215.14:8443/hook").await.unwrap();
        assert_eq!(ok.domain, None);
        assert_eq!(ok.addrs, vec!["93.184.215.14:8443".parse().unwrap()]);
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        let g = guard(
            AppEnv::Test,
            &[],
            &[
                ("loopback.test", "127.0.0.1"),
                ("meta.test", "169.254.169.254"),
                ("public.test", "8.8.8.8"),
            ],
        );
        assert_eq!(
            g.vet("http://loopback.test/").await,
            Err(Refusal::Forbidden)
        );
        assert_eq!(g.vet("http://meta.test/").await, Err(Refusal::Forbidden));
        let v = g.vet("https://public.test/x").await.unwrap();
        assert_eq!(v.domain.as_deref(), Some("public.test"));
        assert_eq!(v.addrs, vec!["8.8.8.8:443".parse().unwrap()]);
        // Re-pointing a name between create and delivery is caught by the re-check.
        g.set_test_host("public.test", vec!["10.0.0.1".parse().unwrap()]);
        assert_eq!(
            g.vet("https://public.test/x").await,
            Err(Refusal::Forbidden)
        );
        // One bad address among good ones refuses the whole name.
        g.set_test_host(
            "mixed.test",
            vec!["8.8.8.8".parse().unwrap(), "::1".parse().unwrap()],
        );
        assert_eq!(g.vet("https://mixed.test/").await, Err(Refusal::Forbidden));
    }

    #[tokio::test]
    async fn localhost_is_refused_before_any_lookup() {
        let g = guard(AppEnv::Test, &[], &[]);
        assert_eq!(
            g.vet("http://localhost:8080/").await,
            Err(Refusal::Forbidden)
        );
    }

    #[tokio::test]
    async fn allow_list_skips_the_address_check_only_for_matches() {
        let g = guard(
            AppEnv::Production,
            &["127.0.0.1:4000", "internal.test", "10.20.0.0/16"],
            &[],
        );
        let v = g.vet("http://127.0.0.1:4000/hook").await.unwrap();
        assert_eq!(v.addrs, vec!["127.0.0.1:4000".parse().unwrap()]);
        assert_eq!(
            g.vet("http://127.0.0.1:4001/hook").await,
            Err(Refusal::Scheme)
        );
        assert_eq!(
            g.vet("https://127.0.0.1:4001/hook").await,
            Err(Refusal::Forbidden)
        );
        assert!(g.vet("https://10.20.3.4/").await.is_ok());
        assert_eq!(g.vet("https://10.21.3.4/").await, Err(Refusal::Forbidden));
        // A name is judged by its addresses: one resolving to an allow-listed address and port passes, and
        // re-pointing it elsewhere is caught by the next check.
        let t = guard(
            AppEnv::Test,
            &["127.0.0.1:4000"],
            &[("rebind.test", "127.0.0.1")],
        );
        assert!(t.vet("http://rebind.test:4000/").await.is_ok());
        assert_eq!(
            t.vet("http://rebind.test:4001/").await,
            Err(Refusal::Forbidden)
        );
        t.set_test_host("rebind.test", vec!["10.0.0.1".parse().unwrap()]);
        assert_eq!(
            t.vet("http://rebind.test:4000/").await,
            Err(Refusal::Forbidden)
        );
        // Production never consults test hosts, so this name goes to DNS (and `.test` does not resolve).
        assert_eq!(
            g.vet("https://nothing.invalid/").await,
            Err(Refusal::Unresolvable)
        );
    }

    #[test]
    fn allow_entries_parse() {
        assert_eq!(
            "Hooks.Example.org:8443".parse::<AllowEntry>(),
            Ok(AllowEntry::Host {
                host: "hooks.example.org".into(),
                port: Some(8443)
            })
        );
        assert_eq!(
            "[::1]:80".parse::<AllowEntry>(),
            Ok(AllowEntry::Host {
                host: "::1".into(),
                port: Some(80)
            })
        );
        assert_eq!(
            "fd00::1".parse::<AllowEntry>(),
            Ok(AllowEntry::Host {
                host: "fd00::1".into(),
                port: None
            })
        );
        assert!(matches!(
            "10.0.0.0/8".parse::<AllowEntry>(),
            Ok(AllowEntry::Net(_))
        ));
        assert!("host:0".parse::<AllowEntry>().is_err());
        assert!("host:x".parse::<AllowEntry>().is_err());
        assert!("".parse::<AllowEntry>().is_err());
        assert!("a b".parse::<AllowEntry>().is_err());
    }

    #[tokio::test]
    async fn pinned_client_builds() {
        let g = guard(AppEnv::Test, &[], &[("public.test", "8.8.8.8")]);
        let v = g.vet("http://public.test:8080/").await.unwrap();
        assert!(g.client(&v).is_ok());
    }
}
