//! The web server's section: addresses and public URL, logging, CORS, trusted proxies and request limits.

use std::{net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use url::Url;

use super::reader::Reader;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" | "text" => Ok(Self::Pretty),
            _ => Err("must be json or pretty".into()),
        }
    }
}

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address) used for the trusted-proxy list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V6(_), IpAddr::V4(v4)) => {
                self.contains(std::net::IpAddr::V6(v4.to_ipv6_mapped()))
            }
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(std::net::IpAddr::V4(v4))),
        }
    }
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}` has an invalid prefix length (0..={max})"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

/// `BIND_ADDR`, `METRICS_ADDR`, `PUBLIC_URL` (required and HTTPS in production).
pub(super) struct Addresses {
    pub bind_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub public_url: Option<Url>,
}

pub(super) fn addresses(r: &mut Reader<'_>, prod: bool) -> Addresses {
    let bind_addr: SocketAddr = r.parsed("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 3000)));
    let metrics_addr = match r.raw("METRICS_ADDR") {
        None => None,
        Some(v) => match v.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                r.problem(
                    "METRICS_ADDR",
                    format!("`{v}` is not an address like 0.0.0.0:9100"),
                );
                None
            }
        },
    };
    let public_url = match r.raw("PUBLIC_URL") {
        Some(v) => match Url::parse(&v) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Some(u),
            Ok(_) => {
                r.problem("PUBLIC_URL", "must be an http:// or https:// URL");
                None
            }
            Err(e) => {
                r.problem("PUBLIC_URL", format!("is not a valid URL: {e}"));
                None
            }
        },
        None if prod => {
            r.problem(
                "PUBLIC_URL",
                "is required in production (e.g. https://vortex.example.org)",
            );
            None
        }
        None => Url::parse(&format!("http://{bind_addr}")).ok(),
    };
    if let Some(u) = &public_url
        && prod
        && u.scheme() != "https"
    {
        r.problem("PUBLIC_URL", "must use https:// in production");
    }

    Addresses {
        bind_addr,
        metrics_addr,
        public_url,
    }
}

/// `LOG_LEVEL`, `LOG_FORMAT` (JSON by default in production).
pub(super) fn logging(r: &mut Reader<'_>, prod: bool) -> (String, LogFormat) {
    let log_level = r.string("LOG_LEVEL", "info");
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        r.problem(
            "LOG_LEVEL",
            "is not a valid filter (e.g. `info` or `info,sqlx=warn`)",
        );
    }
    let default_format = if prod {
        LogFormat::Json
    } else {
        LogFormat::Pretty
    };
    let log_format = r.parsed("LOG_FORMAT", default_format);

    (log_level, log_format)
}

/// `CORS_ALLOWED_ORIGINS`, `TRUSTED_PROXIES`, request timeout and size limits, `SITE_ROOT`.
pub(super) struct Http {
    pub cors_allowed_origins: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    pub form_max_fields: usize,
    pub site_root: PathBuf,
}

pub(super) fn http(r: &mut Reader<'_>, prod: bool) -> Http {
    let mut cors_allowed_origins = Vec::new();
    for origin in r
        .string("CORS_ALLOWED_ORIGINS", "")
        .split(',')
        .map(str::trim)
    {
        if origin.is_empty() {
            continue;
        }
        match Url::parse(origin) {
            Ok(u) if u.path() == "/" && u.query().is_none() && u.host_str().is_some() => {
                cors_allowed_origins.push(u.origin().ascii_serialization());
            }
            _ => r.problem(
                "CORS_ALLOWED_ORIGINS",
                format!("`{origin}` is not an origin (scheme://host[:port])"),
            ),
        }
    }
    if prod
        && cors_allowed_origins
            .iter()
            .any(|o| o.starts_with("http://"))
    {
        r.problem(
            "CORS_ALLOWED_ORIGINS",
            "must list only https:// origins in production",
        );
    }
    let mut trusted_proxies = Vec::new();
    for p in r
        .string("TRUSTED_PROXIES", "")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match p.parse::<IpNet>() {
            Ok(n) => trusted_proxies.push(n),
            Err(e) => r.problem("TRUSTED_PROXIES", e),
        }
    }
    let request_timeout = r.seconds("REQUEST_TIMEOUT_SECS", 30.0, 1.0, 600.0);
    let body_limit_bytes = r.bounded("BODY_LIMIT_BYTES", 2 * 1024 * 1024usize, 1024, 1 << 30);
    let form_max_fields = r.bounded("FORM_MAX_FIELDS", 1000usize, 10, 1_000_000);
    let site_root = PathBuf::from(r.string("SITE_ROOT", "target/site"));

    Http {
        cors_allowed_origins,
        trusted_proxies,
        request_timeout,
        body_limit_bytes,
        form_max_fields,
        site_root,
    }
}
