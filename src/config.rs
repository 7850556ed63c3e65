//! One configuration: the TOML file, then `TANDEM_<SECTION>_<KEY>` environment variables, then
//! CLI flags. Unknown keys and bad values stop the server at start-up with a clear message.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::sip::SipConfig;

/// The built-in defaults, the same file shipped as config/tandem.toml.
pub const DEFAULT_TOML: &str = include_str!("../config/tandem.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub sessions: SessionsConfig,
    pub media: MediaConfig,
    pub mail: MailConfig,
    pub recording: RecordingConfig,
    pub sip: SipConfig,
    pub helper: HelperConfig,
    pub files: FilesConfig,
}

/// Files the primary CSR publishes to a customer (SPEC F1): where they wait to be downloaded,
/// and how large they may be.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Folder of the published files, one folder per session; emptied when the server starts.
    pub dir: PathBuf,
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
    /// Most bytes one session's published files hold at once (uploads under way included).
    pub max_session_bytes: u64,
}

/// Where recordings live and how they are shared (SPEC R4).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    /// Folder of the ARF and MP4 files; created when the first file is written.
    pub dir: PathBuf,
    /// Lifetime of a signed streaming link, in seconds.
    pub link_ttl_secs: u64,
    /// Largest ARF upload accepted, in bytes.
    pub max_upload_bytes: u64,
    /// Longest upload accepted, in seconds: an export renders every second of a recording.
    pub max_duration_secs: u64,
    /// Longest stretch with nothing recorded that an upload may hold, in seconds.
    pub max_gap_secs: u64,
    /// Largest picture a video frame may declare, in an upload or in any export.
    pub max_frame_width: u32,
    pub max_frame_height: u32,
    /// What one account's uploads may hold at once: bytes of ARF, and files.
    pub upload_quota_bytes: u64,
    pub upload_quota_files: u64,
    /// Exports run at once (one per account at a time).
    pub export_workers: usize,
    /// An export may take this many times its recording's length, and at least
    /// `export_min_secs`, before it fails.
    pub export_time_ratio: f64,
    pub export_min_secs: u64,
}

impl RecordingConfig {
    /// What an upload may hold before it is accepted.
    pub fn upload_limits(&self) -> tandem_arf::Limits {
        tandem_arf::Limits {
            max_duration_us: self.max_duration_secs.saturating_mul(1_000_000),
            max_gap_us: self.max_gap_secs.saturating_mul(1_000_000),
            max_width: self.max_frame_width,
            max_height: self.max_frame_height,
        }
    }

    /// The wall-clock time an export of a recording this long may take.
    pub fn export_time_allowed(&self, recorded: Duration) -> Duration {
        let scaled = recorded.as_secs_f64() * self.export_time_ratio;
        Duration::from_secs(self.export_min_secs)
            .max(Duration::try_from_secs_f64(scaled).unwrap_or(Duration::MAX))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub listen: SocketAddr,
    pub public_address: String,
    /// Media workers (each a UDP socket and a loop); 0 is one per CPU core.
    pub workers: usize,
}

impl MediaConfig {
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl MediaConfig {
    /// The announced address, if one is set.
    pub fn public(&self) -> Result<Option<SocketAddr>, String> {
        if self.public_address.is_empty() {
            return Ok(None);
        }
        self.public_address.parse().map(Some).map_err(|_| {
            format!(
                "media.public_address {:?} is not ip:port",
                self.public_address
            )
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: String,
    pub max_frame_bytes: usize,
    /// The bearer token a scraper sends for `/metrics`; empty: only this machine may read it.
    pub metrics_token: String,
    /// A participant's WebSocket is pinged this often, in seconds...
    pub ws_ping_secs: u64,
    /// ...and closed when nothing at all has come from it for this long.
    pub ws_silence_secs: u64,
    /// Most HTTP connections open at once, WebSockets included (never more than half the
    /// open-file limit); more are answered 503 server_busy and closed.
    pub max_connections: usize,
    /// Most of those from one address (an IPv6 /64); 0: no share per address.
    pub max_connections_per_address: usize,
    /// Seconds a request's headers may take, from the connection's opening or the request's
    /// first byte.
    pub header_timeout_secs: u64,
    /// Seconds a kept-alive connection may sit idle between requests.
    pub idle_timeout_secs: u64,
    /// Seconds an answer may wait for the client to take any of it.
    pub send_timeout_secs: u64,
    /// Seconds a request body may stall; also the slack of its pace...
    pub body_timeout_secs: u64,
    /// ...which must average at least this many bytes a second.
    pub body_min_bytes_per_sec: u64,
    /// Reverse proxies whose forwarded client address is believed: CIDRs (or addresses),
    /// comma-separated; empty: none, every client is its socket's address.
    pub trusted_proxies: String,
    /// Where those proxies put the client's address: `x-forwarded-for` or `forwarded`.
    pub client_address_header: String,
}

/// Which header a trusted proxy names the client in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAddressHeader {
    /// `X-Forwarded-For: client, proxy1, ...`
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`
    Forwarded,
}

impl ServerConfig {
    /// The trusted proxies' networks.
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| {
                        format!("server.trusted_proxies: {s:?} is not an address or a CIDR")
                    })
            })
            .collect()
    }

    pub fn client_address_header(&self) -> Result<ClientAddressHeader, String> {
        match self
            .client_address_header
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "x-forwarded-for" => Ok(ClientAddressHeader::XForwardedFor),
            "forwarded" => Ok(ClientAddressHeader::Forwarded),
            other => Err(format!(
                "server.client_address_header is x-forwarded-for or forwarded, not {other:?}"
            )),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub database: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub secret_file: PathBuf,
    pub access_token_ttl_secs: u64,
    pub invite_ttl_secs: u64,
    pub participant_token_ttl_secs: u64,
    /// Password checks (argon2, about 19 MiB each) computed at once; 0 = one per core.
    pub max_concurrent_hashes: usize,
    /// Password checks that may wait for their turn (up to 10 s); more are refused at once.
    pub max_waiting_hashes: usize,
}

impl AuthConfig {
    /// How many password checks run at once.
    pub fn hashing_threads(&self) -> usize {
        match self.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    pub reconnect_grace_secs: u64,
    pub commands_per_second: f64,
    pub command_burst: f64,
    /// Wrong session numbers a minute from one address (an IPv6 /64), over HTTP and SIP
    /// together, before its tries are refused (src/throttle/session_numbers.rs).
    pub wrong_numbers_per_address: usize,
    /// Wrong session numbers a minute from everywhere past which only addresses without a
    /// wrong number of their own that minute may try.
    pub wrong_numbers_total: usize,
    /// Customer joins one session takes a minute; past it 429 too_many_joins.
    pub joins_per_minute: u32,
}

/// Tandem Helper: its download and its pairing codes (docs/helper.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelperConfig {
    /// The helper binary served for download; empty: `tandem-helper` beside the server's own
    /// executable.
    pub binary: PathBuf,
    /// How long a pairing code works, in seconds.
    pub code_ttl_secs: u64,
    /// How long a computer restarting may take to rejoin with its ticket, in seconds (M5).
    pub rejoin_ttl_secs: u64,
    /// Pairing codes open at once on the server.
    pub max_codes: usize,
    /// Wrong pairing codes a minute from one address (an IPv6 /64) before its tries are refused.
    pub wrong_codes_per_address: usize,
    /// Wrong pairing codes a minute from everywhere past which only addresses without a wrong
    /// code of their own that minute may try.
    pub wrong_codes_total: usize,
}

impl HelperConfig {
    /// Where the helper binary to serve is: the configured file, or the one beside the server.
    pub fn binary_path(&self) -> Option<PathBuf> {
        if !self.binary.as_os_str().is_empty() {
            return Some(self.binary.clone());
        }
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.join("tandem-helper"))
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailSecurity {
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub enabled: bool,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub security: MailSecurity,
    pub from: String,
    pub username: String,
    pub password: String,
    /// E-mails one account may have the server send within an hour...
    pub max_per_sender_per_hour: usize,
    /// ...to one address, from anyone...
    pub max_per_recipient_per_hour: usize,
    /// ...and in all.
    pub max_per_hour: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl Config {
    /// Loads the defaults, then `file` (if given) over them, then the environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut value: toml::Table = DEFAULT_TOML.parse().expect("built-in defaults parse");
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let overlay: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Invalid {
                        origin: path.display().to_string(),
                        message: e.to_string(),
                    })?;
            merge(&mut value, overlay, &path.display().to_string())?;
        }
        for (key, raw) in env {
            let Some(rest) = key.strip_prefix("TANDEM_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some((section, field)) = rest.split_once('_') else {
                continue;
            };
            let origin = format!("environment variable {key}");
            let Some(toml::Value::Table(table)) = value.get_mut(section) else {
                return Err(ConfigError::Invalid {
                    origin,
                    message: format!("no section [{section}]"),
                });
            };
            let Some(old) = table.get(field) else {
                return Err(ConfigError::Invalid {
                    origin,
                    message: format!("no key {field} in [{section}]"),
                });
            };
            let new = parse_like(old, &raw).ok_or_else(|| ConfigError::Invalid {
                origin: origin.clone(),
                message: format!("{raw:?} is not a valid {}", old.type_str()),
            })?;
            table.insert(field.to_string(), new);
        }
        let config: Config =
            toml::Value::Table(value)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    origin: "configuration".into(),
                    message: e.to_string(),
                })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |message: &str| {
            Err(ConfigError::Invalid {
                origin: "configuration".into(),
                message: message.into(),
            })
        };
        if !(self.server.public_url.starts_with("http://")
            || self.server.public_url.starts_with("https://"))
        {
            return bad("server.public_url must start with http:// or https://");
        }
        if self.server.max_frame_bytes < 1024 {
            return bad("server.max_frame_bytes must be at least 1024");
        }
        if self.server.ws_ping_secs == 0 || self.server.ws_silence_secs <= self.server.ws_ping_secs
        {
            return bad(
                "server.ws_ping_secs must be positive and server.ws_silence_secs longer than it",
            );
        }
        let s = &self.server;
        if s.max_connections == 0
            || s.header_timeout_secs == 0
            || s.idle_timeout_secs == 0
            || s.send_timeout_secs == 0
            || s.body_timeout_secs == 0
            || s.body_min_bytes_per_sec == 0
        {
            return bad(
                "server.max_connections, the server's timeouts and body_min_bytes_per_sec must be positive",
            );
        }
        let token = &self.server.metrics_token;
        if !token.is_empty() && (token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic())) {
            return bad("server.metrics_token must be empty or 16 or more printable characters");
        }
        for checked in [
            self.server.trusted_proxies().map(drop),
            self.server.client_address_header().map(drop),
        ] {
            if let Err(message) = checked {
                return bad(&message);
            }
        }
        if self.sessions.wrong_numbers_per_address == 0 || self.sessions.wrong_numbers_total == 0 {
            return bad(
                "sessions.wrong_numbers_per_address and sessions.wrong_numbers_total must be positive",
            );
        }
        if self.auth.access_token_ttl_secs == 0
            || self.auth.invite_ttl_secs == 0
            || self.auth.participant_token_ttl_secs == 0
        {
            return bad("token lifetimes must be positive");
        }
        if let Err(message) = self.media.public() {
            return Err(ConfigError::Invalid {
                origin: "configuration".into(),
                message,
            });
        }
        if let Err(message) = self.sip.public() {
            return Err(ConfigError::Invalid {
                origin: "configuration".into(),
                message,
            });
        }
        if self.sip.service_number.is_empty()
            || !self
                .sip
                .service_number
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        {
            return bad("sip.service_number must be letters and digits");
        }
        if let Err(message) = self.sip.check_limits() {
            return bad(&message);
        }
        if let Err(message) = self.sip.algorithms() {
            return Err(ConfigError::Invalid {
                origin: "configuration".into(),
                message,
            });
        }
        if self.sip.realm.contains(['"', '\\']) || self.sip.realm.chars().any(char::is_control) {
            return bad("sip.realm must not hold quotes, backslashes or control characters");
        }
        if self.recording.dir.as_os_str().is_empty() {
            return bad("recording.dir must not be empty");
        }
        if self.recording.link_ttl_secs == 0 || self.recording.max_upload_bytes == 0 {
            return bad("recording.link_ttl_secs and recording.max_upload_bytes must be positive");
        }
        let r = &self.recording;
        if r.max_duration_secs == 0
            || r.max_gap_secs == 0
            || r.upload_quota_bytes == 0
            || r.upload_quota_files == 0
            || r.export_workers == 0
        {
            return bad(
                "recording.max_duration_secs, max_gap_secs, upload_quota_bytes, upload_quota_files and export_workers must be positive",
            );
        }
        let frame = 16..=16384;
        if !frame.contains(&r.max_frame_width) || !frame.contains(&r.max_frame_height) {
            return bad("recording.max_frame_width and max_frame_height must be 16 to 16384");
        }
        if !(r.export_time_ratio.is_finite() && r.export_time_ratio > 0.0) {
            return bad("recording.export_time_ratio must be a positive number");
        }
        if !(self.sessions.commands_per_second > 0.0 && self.sessions.command_burst >= 1.0) {
            return bad("sessions.commands_per_second must be > 0 and command_burst >= 1");
        }
        if self.sessions.joins_per_minute == 0 {
            return bad("sessions.joins_per_minute must be at least 1");
        }
        if self.files.max_file_bytes == 0 || self.files.max_session_bytes == 0 {
            return bad("files.max_file_bytes and max_session_bytes must be positive");
        }
        // The files folder is emptied of sessions' folders at every start: keep it apart.
        let files = &self.files.dir;
        if self.storage.database.starts_with(files)
            || self.recording.dir.starts_with(files)
            || files.starts_with(&self.recording.dir)
        {
            return bad(
                "files.dir must be a folder of its own, apart from the database and recording.dir",
            );
        }
        let h = &self.helper;
        if h.code_ttl_secs == 0
            || h.rejoin_ttl_secs == 0
            || h.max_codes == 0
            || h.wrong_codes_per_address == 0
            || h.wrong_codes_total == 0
        {
            return bad(
                "helper.code_ttl_secs, max_codes, wrong_codes_per_address and wrong_codes_total must be positive",
            );
        }
        Ok(())
    }

    pub fn reconnect_grace(&self) -> Duration {
        Duration::from_secs(self.sessions.reconnect_grace_secs)
    }
}

/// Overlays `overlay` on `base`, refusing keys the defaults do not have.
fn merge(base: &mut toml::Table, overlay: toml::Table, origin: &str) -> Result<(), ConfigError> {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o, origin)?,
            (Some(slot), v) => *slot = v,
            (None, _) => {
                return Err(ConfigError::Invalid {
                    origin: origin.into(),
                    message: format!("unknown key {k}"),
                });
            }
        }
    }
    Ok(())
}

fn parse_like(old: &toml::Value, raw: &str) -> Option<toml::Value> {
    Some(match old {
        toml::Value::String(_) => toml::Value::String(raw.to_string()),
        toml::Value::Integer(_) => toml::Value::Integer(raw.parse().ok()?),
        toml::Value::Float(_) => toml::Value::Float(raw.parse().ok()?),
        toml::Value::Boolean(_) => toml::Value::Boolean(raw.parse().ok()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.server.listen.port(), 8080);
        assert!(!c.mail.enabled);
        assert_eq!(c.recording.dir, PathBuf::from("data/recordings"));
        assert_eq!(c.recording.link_ttl_secs, 3600);
        assert_eq!(c.recording.max_upload_bytes, 2 << 30);
        let limits = c.recording.upload_limits();
        assert_eq!(limits.max_duration_us, 12 * 3600 * 1_000_000);
        assert_eq!((limits.max_width, limits.max_height), (3840, 2160));
        assert_eq!(c.recording.export_workers, 2);
        // At least the minimum, then the ratio of the recording's length.
        let allowed = |s| c.recording.export_time_allowed(Duration::from_secs(s));
        assert_eq!(allowed(1), Duration::from_secs(600));
        assert_eq!(allowed(3600), Duration::from_secs(3 * 3600));
    }

    #[test]
    fn upload_and_export_limits_are_checked() {
        for bad in [
            ("TANDEM_RECORDING_MAX_DURATION_SECS", "0"),
            ("TANDEM_RECORDING_MAX_FRAME_WIDTH", "16383000"),
            ("TANDEM_RECORDING_MAX_FRAME_HEIGHT", "8"),
            ("TANDEM_RECORDING_EXPORT_WORKERS", "0"),
            ("TANDEM_RECORDING_EXPORT_TIME_RATIO", "-1"),
            ("TANDEM_RECORDING_EXPORT_TIME_RATIO", "NaN"),
            ("TANDEM_RECORDING_UPLOAD_QUOTA_FILES", "0"),
        ] {
            let e = Config::load(None, env(&[bad])).unwrap_err().to_string();
            assert!(e.contains("recording."), "{bad:?}: {e}");
        }
        let c = Config::load(
            None,
            env(&[
                ("TANDEM_RECORDING_EXPORT_TIME_RATIO", "0.5"),
                ("TANDEM_RECORDING_EXPORT_MIN_SECS", "0"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.recording.export_time_allowed(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn recording_settings_come_from_the_environment_and_are_checked() {
        let c = Config::load(
            None,
            env(&[
                ("TANDEM_RECORDING_DIR", "/srv/rec"),
                ("TANDEM_RECORDING_LINK_TTL_SECS", "60"),
                ("TANDEM_RECORDING_MAX_UPLOAD_BYTES", "1048576"),
            ]),
        )
        .unwrap();
        assert_eq!(c.recording.dir, PathBuf::from("/srv/rec"));
        assert_eq!(c.recording.link_ttl_secs, 60);
        assert_eq!(c.recording.max_upload_bytes, 1 << 20);
        assert!(Config::load(None, env(&[("TANDEM_RECORDING_LINK_TTL_SECS", "0")])).is_err());
        assert!(Config::load(None, env(&[("TANDEM_RECORDING_MAX_UPLOAD_BYTES", "-1")])).is_err());
    }

    #[test]
    fn sip_digest_settings_are_read_and_checked() {
        use crate::sip::digest::Algorithm;
        // MD5 alone by default: phones that do not know SHA-256 give up on a challenge that
        // offers it (docs/sip.md, Phones).
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.sip.algorithms().unwrap(), vec![Algorithm::Md5]);
        assert_eq!(c.sip.realm_for("http://localhost:8080"), "localhost");
        assert_eq!(
            c.sip.realm_for("https://help.example.com/x"),
            "help.example.com"
        );
        assert_eq!(
            c.sip.realm_for("https://[2001:db8::1]:8443"),
            "[2001:db8::1]"
        );
        assert!(!c.sip.require_auth);
        let c = Config::load(
            None,
            env(&[
                ("TANDEM_SIP_DIGEST_ALGORITHMS", "md5"),
                ("TANDEM_SIP_REALM", "support.example.com"),
                ("TANDEM_SIP_REQUIRE_AUTH", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.sip.algorithms().unwrap(), vec![Algorithm::Md5]);
        assert_eq!(
            c.sip.realm_for("http://localhost:8080"),
            "support.example.com"
        );
        assert!(c.sip.require_auth);
        for bad in [
            ("TANDEM_SIP_DIGEST_ALGORITHMS", "SHA-1"),
            ("TANDEM_SIP_REALM", "a\"b"),
        ] {
            let e = Config::load(None, env(&[bad])).unwrap_err().to_string();
            assert!(e.contains("sip."), "{e}");
        }
    }

    #[test]
    fn environment_overrides_file_and_types_are_checked() {
        let c = Config::load(
            None,
            env(&[
                ("TANDEM_SERVER_LISTEN", "0.0.0.0:9000"),
                ("TANDEM_MAIL_ENABLED", "true"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert!(c.mail.enabled);
        let e = Config::load(None, env(&[("TANDEM_MAIL_SMTP_PORT", "lots")])).unwrap_err();
        assert!(e.to_string().contains("TANDEM_MAIL_SMTP_PORT"), "{e}");
        let e = Config::load(None, env(&[("TANDEM_SERVER_COLOUR", "red")])).unwrap_err();
        assert!(e.to_string().contains("no key colour"), "{e}");
        for weak in ["short", "sixteen chars ok but spaced"] {
            let e = Config::load(None, env(&[("TANDEM_SERVER_METRICS_TOKEN", weak)])).unwrap_err();
            assert!(e.to_string().contains("metrics_token"), "{e}");
        }
        let c = Config::load(
            None,
            env(&[("TANDEM_SERVER_METRICS_TOKEN", "0123456789abcdef")]),
        )
        .unwrap();
        assert_eq!(c.server.metrics_token, "0123456789abcdef");
    }

    #[test]
    fn connection_limits_have_defaults_and_must_be_positive() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(
            (
                c.server.max_connections,
                c.server.max_connections_per_address
            ),
            (4096, 1024)
        );
        assert_eq!(c.server.header_timeout_secs, 15);
        for key in [
            "TANDEM_SERVER_MAX_CONNECTIONS",
            "TANDEM_SERVER_HEADER_TIMEOUT_SECS",
            "TANDEM_SERVER_IDLE_TIMEOUT_SECS",
            "TANDEM_SERVER_SEND_TIMEOUT_SECS",
            "TANDEM_SERVER_BODY_TIMEOUT_SECS",
            "TANDEM_SERVER_BODY_MIN_BYTES_PER_SEC",
        ] {
            let e = Config::load(None, env(&[(key, "0")])).unwrap_err();
            assert!(e.to_string().contains("must be positive"), "{key}: {e}");
        }
        let c = Config::load(
            None,
            env(&[("TANDEM_SERVER_MAX_CONNECTIONS_PER_ADDRESS", "0")]),
        )
        .unwrap();
        assert_eq!(c.server.max_connections_per_address, 0, "0: no share");
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses_and_checked() {
        let c = Config::load(None, env(&[])).unwrap();
        assert!(c.server.trusted_proxies().unwrap().is_empty());
        assert_eq!(
            c.server.client_address_header().unwrap(),
            ClientAddressHeader::XForwardedFor
        );
        assert_eq!(
            (
                c.sessions.wrong_numbers_per_address,
                c.sessions.wrong_numbers_total
            ),
            (10, 300)
        );
        let c = Config::load(
            None,
            env(&[
                (
                    "TANDEM_SERVER_TRUSTED_PROXIES",
                    "10.1.2.3/8, 192.0.2.7 ,2001:db8::/32",
                ),
                ("TANDEM_SERVER_CLIENT_ADDRESS_HEADER", "Forwarded"),
            ]),
        )
        .unwrap();
        let nets: Vec<String> = c
            .server
            .trusted_proxies()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        assert_eq!(
            c.server.client_address_header().unwrap(),
            ClientAddressHeader::Forwarded
        );
        for bad in [
            ("TANDEM_SERVER_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("TANDEM_SERVER_TRUSTED_PROXIES", "proxy.example.com"),
            ("TANDEM_SERVER_CLIENT_ADDRESS_HEADER", "x-real-ip"),
            ("TANDEM_SESSIONS_WRONG_NUMBERS_TOTAL", "0"),
        ] {
            let e = Config::load(None, env(&[bad])).unwrap_err().to_string();
            assert!(
                e.contains(&bad.0[7..].to_ascii_lowercase().replacen('_', ".", 1)),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_keys_in_a_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("unknown key lisen"), "{e}");
        std::fs::write(&path, "[server]\npublic_url = \"ftp://x\"\n").unwrap();
        assert!(Config::load(Some(&path), env(&[])).is_err());
    }
}
