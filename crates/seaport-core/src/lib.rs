//! seaport-core (being written).
#![deny(missing_docs)]

pub mod error;
pub mod version;

pub use error::{ParseError, ParseErrorKind};
pub use semver;
pub use version::VersionRange;
