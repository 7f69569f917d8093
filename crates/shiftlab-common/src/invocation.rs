//! Who is running: the host name and process id that every temporary file name and lock file of
//! a run folder carries, so that another invocation can tell a live writer's file from one left
//! by a process that is provably gone (same host, no such process) and never deletes the former.
//! On another host nothing is provable from a name alone: such files are left alone.

use std::sync::OnceLock;

/// The running process, as recorded in file names and run records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub host: String,
    pub pid: u32,
}

impl Invocation {
    /// This process.
    pub fn current() -> &'static Invocation {
        static CURRENT: OnceLock<Invocation> = OnceLock::new();
        CURRENT.get_or_init(|| Invocation {
            host: hostname(),
            pid: std::process::id(),
        })
    }

    /// `host~pid`: '~' appears in no host name, so the tag splits back unambiguously.
    pub fn tag(&self) -> String {
        format!("{}~{}", self.host, self.pid)
    }

    /// Parses [`Invocation::tag`].
    pub fn from_tag(tag: &str) -> Option<Invocation> {
        let (host, pid) = tag.rsplit_once('~')?;
        Some(Invocation {
            host: host.to_string(),
            pid: pid.parse().ok()?,
        })
    }

    /// True only when the process provably no longer exists: it ran on this host and there is no
    /// process with its pid. (A reused pid keeps a dead writer's files: the safe direction.)
    pub fn is_gone(&self) -> bool {
        self.host == Invocation::current().host && !process_exists(self.pid)
    }
}

/// The kernel's host name (no libc needed on Linux).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
        .replace('~', "-")
}

fn process_exists(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        // Without /proc nothing is provable: treat the writer as alive.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_liveness_is_judged_on_this_host_only() {
        let me = Invocation::current();
        assert_eq!(Invocation::from_tag(&me.tag()).as_ref(), Some(me));
        assert!(!me.is_gone(), "this process is alive");
        // A pid above the kernel's pid_max (4194304) cannot exist.
        let dead = Invocation {
            host: me.host.clone(),
            pid: 4_194_305,
        };
        assert!(dead.is_gone());
        let elsewhere = Invocation {
            host: format!("{}-other", me.host),
            pid: 4_194_305,
        };
        assert!(
            !elsewhere.is_gone(),
            "another host's process is never provably gone"
        );
        assert_eq!(Invocation::from_tag("no-tilde"), None);
    }
}
