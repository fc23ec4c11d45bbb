//! What the process does to itself at start, before any key is loaded: no core dumps.
//!
//! A core dump of a process that holds the root key (and, while a page shows one, a
//! decrypted identity) would put them in a file anyone who reads `/var/crash` or the
//! journal's coredumps can open. So every `fiktiv` command sets its core size limit to
//! 0 (soft and hard: it cannot be raised again) and marks itself not dumpable, which
//! also keeps other processes of the same user from attaching to it or reading
//! `/proc/PID/mem`. The systemd unit sets `LimitCORE=0` too (`deploy/systemd/`).

/// Forbid core dumps. Returns what failed, if anything (the caller logs it and goes on:
/// an environment that forbids `prctl` has forbidden dumps already, or will be told).
pub fn forbid_core_dumps() -> Result<(), String> {
    use nix::sys::resource::{setrlimit, Resource};
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| format!("setrlimit(RLIMIT_CORE): {e}"))?;
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("prctl(PR_SET_DUMPABLE): {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests
    use super::*;

    #[test]
    fn the_process_is_not_dumpable_afterwards() {
        forbid_core_dumps().unwrap();
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE).unwrap();
        assert_eq!((soft, hard), (0, 0));
        assert!(!nix::sys::prctl::get_dumpable().unwrap());
    }
}
