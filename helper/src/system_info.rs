//! SPEC M1: what the CSR reads about the customer's computer, once the customer allowed it in
//! the helper's window: the system and OS, processor, memory, disks, network, displays,
//! processes, services, installed software and environment. Read with the sysinfo crate and the
//! system's own tools (systemd's `systemctl`, `dpkg-query` or `rpm`), as JSON sections the
//! server checks and the console shows (docs/protocol.md, "System information").

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sysinfo::{
    CpuRefreshKind, Disks, MemoryRefreshKind, Networks, ProcessRefreshKind, ProcessesToUpdate,
    RefreshKind, System, UpdateKind, Users,
};

use crate::platform::Monitor;

/// Most processes listed (the largest by memory): a busy desktop has a few hundred.
const MAX_PROCESSES: usize = 400;
/// Most packages listed.
const MAX_PACKAGES: usize = 8000;
/// Longest command line kept per process.
const MAX_COMMAND: usize = 300;
/// Names of environment variables whose values are hidden: they hold secrets more often than
/// not, and the CSR needs to know they are set, not what they hold.
const SECRET_NAMES: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASS",
    "_PWD",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "COOKIE",
    "SESSION",
    "PRIVATE",
    "DSN",
    "DATABASE_URL",
];

/// Whether a variable or option named `name` probably holds a secret.
fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase().replace('-', "_");
    SECRET_NAMES.iter().any(|s| upper.contains(s))
}

/// A command line with what looks secret hidden: `--password x`, `token=x`, and the
/// password in `scheme://user:password@host`.
fn redacted_command(args: &[String]) -> String {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if std::mem::take(&mut hide_next) {
            out.push("(hidden)".to_owned());
            continue;
        }
        let shown = if let Some((key, _)) = arg.split_once('=')
            && secret_name(key)
        {
            format!("{key}=(hidden)")
        } else if arg.starts_with('-') && secret_name(arg.trim_start_matches('-')) {
            hide_next = true;
            arg.clone()
        } else {
            hide_url_password(arg)
        };
        out.push(shown);
    }
    out.join(" ")
}

fn hide_url_password(arg: &str) -> String {
    let Some(scheme_end) = arg.find("://") else {
        return arg.to_owned();
    };
    let rest = &arg[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return arg.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{}{user}:(hidden){}", &arg[..scheme_end + 3], &rest[at..]),
        None => arg.to_owned(),
    }
}

/// Reads everything; `displays` come from the display server (the platform layer knows them).
/// Blocking (about 0.2 s: processor use is measured over an interval).
pub fn gather(displays: &[Monitor]) -> Value {
    let started = Instant::now();
    let mut sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::everything())
            .with_memory(MemoryRefreshKind::everything()),
    )
    .ok();
    let processes = ProcessRefreshKind::nothing()
        .with_memory()
        .with_cpu()
        .with_cmd(UpdateKind::OnlyIfNotSet)
        .with_user(UpdateKind::OnlyIfNotSet);
    if let Some(s) = sys.as_mut() {
        s.refresh_processes_specifics(ProcessesToUpdate::All, true, processes);
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_millis(200)));
        s.refresh_cpu_all();
        s.refresh_processes_specifics(ProcessesToUpdate::All, true, processes);
    }
    let mut info = serde_json::Map::new();
    info.insert("system".into(), system());
    if let Some(s) = &sys {
        info.insert("cpu".into(), cpu(s));
        info.insert("memory".into(), memory(s));
        info.insert("processes".into(), process_list(s));
    }
    info.insert("disks".into(), disks());
    info.insert("network".into(), network());
    info.insert(
        "displays".into(),
        displays
            .iter()
            .map(|m| {
                json!({"name": m.name, "primary": m.primary, "x": m.rect.x, "y": m.rect.y,
                       "width": m.rect.width, "height": m.rect.height})
            })
            .collect(),
    );
    info.insert("services".into(), services());
    info.insert("software".into(), software());
    info.insert("environment".into(), environment(std::env::vars()));
    let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if let Some(system) = info.get_mut("system").and_then(Value::as_object_mut) {
        system.insert("read_in_ms".into(), json!(took));
    }
    Value::Object(info)
}

fn system() -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    json!({
        "hostname": System::host_name().ok(),
        "os": System::long_os_version().ok().or_else(|| System::name().ok()),
        "os_version": System::os_version().ok(),
        "distribution": System::distribution_id(),
        "kernel": System::kernel_long_version().ok(),
        "architecture": System::cpu_arch(),
        "uptime_secs": System::uptime().ok(),
        "boot_time": System::boot_time().ok(),
        "user": std::env::var("USER").ok(),
        "read_at": u64::try_from(now).unwrap_or(0),
    })
}

fn cpu(s: &System) -> Value {
    let cpus = s.cpus();
    json!({
        "brand": cpus.first().map(|c| c.brand().trim().to_owned()),
        "vendor": cpus.first().map(|c| c.vendor_id().to_owned()),
        "physical_cores": System::physical_core_count().ok(),
        "logical_cores": cpus.len(),
        "frequency_mhz": cpus.first().map(sysinfo::Cpu::frequency),
        "usage_percent": tenths(s.global_cpu_usage()),
        "load_average": System::load_average().ok().map(|l| [l.one, l.five, l.fifteen]),
    })
}

/// A percentage to one decimal, without the binary noise of `f32` printed as `f64`.
fn tenths(percent: f32) -> f64 {
    (f64::from(percent) * 10.0).round() / 10.0
}

fn memory(s: &System) -> Value {
    json!({
        "total_bytes": s.total_memory(),
        "available_bytes": s.available_memory(),
        "used_bytes": s.used_memory(),
        "swap_total_bytes": s.total_swap(),
        "swap_used_bytes": s.used_swap(),
    })
}

fn process_list(s: &System) -> Value {
    let users = Users::new_with_refreshed_list().ok();
    let mut list: Vec<_> = s
        .processes()
        .values()
        .filter(|p| p.thread_kind().is_none())
        .collect();
    list.sort_by_key(|p| std::cmp::Reverse(p.memory()));
    list.iter()
        .take(MAX_PROCESSES)
        .map(|p| {
            let user = p
                .user_id()
                .and_then(|u| users.as_ref()?.get_user_by_id(u))
                .map(|u| u.name().to_owned());
            let args: Vec<String> = p
                .cmd()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let mut command = redacted_command(&args);
            if command.len() > MAX_COMMAND {
                let mut end = MAX_COMMAND;
                while !command.is_char_boundary(end) {
                    end -= 1;
                }
                command.truncate(end);
                command.push('…');
            }
            json!({
                "pid": p.pid().as_u32(),
                "name": p.name().to_string_lossy(),
                "user": user,
                "cpu_percent": tenths(p.cpu_usage()),
                "memory_bytes": p.memory(),
                "command": command,
            })
        })
        .collect()
}

fn disks() -> Value {
    let Ok(disks) = Disks::new_with_refreshed_list() else {
        return json!({"note": "the disks could not be read"});
    };
    disks
        .iter()
        .map(|d| {
            json!({
                "mount": d.mount_point().display().to_string(),
                "device": d.name().to_string_lossy(),
                "file_system": d.file_system().to_string_lossy(),
                "kind": d.kind().to_string(),
                "total_bytes": d.total_space(),
                "available_bytes": d.available_space(),
                "removable": d.is_removable(),
                "read_only": d.is_read_only(),
            })
        })
        .collect()
}

fn network() -> Value {
    let Ok(networks) = Networks::new_with_refreshed_list() else {
        return json!({"note": "the network interfaces could not be read"});
    };
    let mut list: Vec<_> = networks.iter().collect();
    list.sort_by(|a, b| a.0.cmp(b.0));
    list.into_iter()
        .map(|(name, n)| {
            json!({
                "name": name.to_string_lossy(),
                "mac": n.mac_address().to_string(),
                "addresses": n.ip_networks().iter().map(ToString::to_string).collect::<Vec<_>>(),
                "mtu": n.mtu(),
                "received_bytes": n.total_received(),
                "transmitted_bytes": n.total_transmitted(),
            })
        })
        .collect()
}

/// What a system tool printed, or why it could not say.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{program} is not available: {e}")),
    }
}

fn services() -> Value {
    let listed = run(
        "systemctl",
        &[
            "list-units",
            "--type=service",
            "--all",
            "--no-legend",
            "--no-pager",
            "--plain",
        ],
    );
    match listed {
        Ok(text) => parse_services(&text),
        Err(why) => json!({"note": format!("services could not be listed: {why}")}),
    }
}

/// `systemctl list-units --plain --no-legend`: unit, load, active, sub, description.
fn parse_services(text: &str) -> Value {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let unit = f.next()?.strip_suffix(".service")?;
            let _load = f.next()?;
            let active = f.next()?;
            let sub = f.next()?;
            let description = f.collect::<Vec<_>>().join(" ");
            Some(json!({"name": unit, "state": format!("{active} ({sub})"), "description": description}))
        })
        .collect()
}

fn software() -> Value {
    let dpkg = run(
        "dpkg-query",
        &["-W", "-f=${Package}\t${Version}\t${db:Status-Abbrev}\n"],
    );
    if let Ok(text) = dpkg {
        return parse_packages(&text, |status| status.starts_with("ii"));
    }
    match run(
        "rpm",
        &["-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\tii\n"],
    ) {
        Ok(text) => parse_packages(&text, |_| true),
        Err(why) => json!({"note": format!("installed software could not be listed: {why}")}),
    }
}

/// Tab-separated name, version and status, the installed ones (by `installed`), sorted.
fn parse_packages(text: &str, installed: impl Fn(&str) -> bool) -> Value {
    let mut list: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, version, status) = (f.next()?, f.next()?, f.next().unwrap_or(""));
            installed(status.trim()).then_some((name, version))
        })
        .collect();
    list.sort_unstable();
    list.into_iter()
        .take(MAX_PACKAGES)
        .map(|(name, version)| json!({"name": name, "version": version}))
        .collect()
}

/// The environment the helper runs in (the desktop user's), sorted, secret-looking values hidden.
fn environment(vars: impl Iterator<Item = (String, String)>) -> Value {
    let mut list: Vec<(String, String)> = vars.collect();
    list.sort();
    list.into_iter()
        .map(|(name, value)| {
            let value = if secret_name(&name) {
                "(hidden)".to_owned()
            } else {
                hide_url_password(&value)
            };
            json!({"name": name, "value": value})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_and_packages_are_read_from_the_tools_words() {
        let services = parse_services(
            "cron.service loaded active running Regular background program processing daemon\n\
             ssh.service not-found inactive dead ssh.service\n\
             dev-sda.device loaded active plugged disk\n",
        );
        assert_eq!(
            services,
            json!([
                {"name": "cron", "state": "active (running)", "description": "Regular background program processing daemon"},
                {"name": "ssh", "state": "inactive (dead)", "description": "ssh.service"},
            ])
        );
        let packages = parse_packages(
            "zlib1g\t1:1.2.13\tii \nbash\t5.2.15-2\tii \nold\t1.0\trc \n",
            |s| s.starts_with("ii"),
        );
        assert_eq!(
            packages,
            json!([{"name": "bash", "version": "5.2.15-2"}, {"name": "zlib1g", "version": "1:1.2.13"}])
        );
    }

    #[test]
    fn secret_looking_environment_values_are_hidden_not_their_names() {
        let env = environment(
            [
                ("PATH".to_owned(), "/usr/bin".to_owned()),
                ("GITHUB_TOKEN".to_owned(), "ghp_x".to_owned()),
                (
                    "DBUS_SESSION_BUS_ADDRESS".to_owned(),
                    "unix:path=/run".to_owned(),
                ),
            ]
            .into_iter(),
        );
        assert_eq!(
            env,
            json!([
                {"name": "DBUS_SESSION_BUS_ADDRESS", "value": "(hidden)"},
                {"name": "GITHUB_TOKEN", "value": "(hidden)"},
                {"name": "PATH", "value": "/usr/bin"},
            ])
        );
    }

    #[test]
    fn secrets_on_command_lines_are_hidden() {
        let args: Vec<String> = [
            "psql",
            "--password",
            "hunter2",
            "PGPASSWORD=x",
            "postgres://app:s3cret@db/main",
            "--api-token=abc",
            "-v",
            "file.txt",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            redacted_command(&args),
            "psql --password (hidden) PGPASSWORD=(hidden) postgres://app:(hidden)@db/main --api-token=(hidden) -v file.txt"
        );
    }

    #[test]
    fn this_machine_is_read_as_it_is() {
        let info = gather(&[]);
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(info["system"]["hostname"], hostname.trim());
        // The memory and the OS are checked against /proc in tests/join/system_info.rs.
        assert!(info["memory"]["total_bytes"].as_u64().unwrap() > 0);
        let processes = info["processes"].as_array().unwrap();
        let me = std::process::id();
        assert!(
            processes.len() == MAX_PROCESSES || processes.iter().any(|p| p["pid"] == me),
            "this test's own process is listed"
        );
        assert!(info["system"]["read_in_ms"].as_u64().unwrap() < 10_000);
        assert!(
            info["network"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["name"] == "lo"),
            "{}",
            info["network"]
        );
    }
}
