//! Reply types and option types of the command groups, one file per area.

pub mod cluster;
pub mod scan;
pub mod scripting;
pub mod server;

pub use cluster::*;
pub use scan::*;
pub use scripting::*;
pub use server::*;
