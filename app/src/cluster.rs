//! Several `fiktiv serve` instances on one database: schedules claimed once, leases per
//! target, job attempts. The store of these is the routine's
//! ([`fiktiv_routine::cluster`]); this module names it where the runtime uses it.

pub use fiktiv_routine::cluster::*;
