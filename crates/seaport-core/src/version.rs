//! Node-semver version ranges. (Stub: being written.)

use std::fmt;
use std::str::FromStr;

use crate::error::ParseError;

/// A node-semver version range such as `^1.2.3`, `1.x || >=2.5.0` or `1.2 - 2.3.4`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VersionRange {
    source: String,
}

impl VersionRange {
    /// Parses a range in node-semver syntax.
    ///
    /// # Errors
    /// A [`ParseError`] naming the input and what is wrong with it.
    pub fn parse(input: &str) -> Result<VersionRange, ParseError> {
        Ok(VersionRange { source: input.to_string() })
    }

    /// Whether `version` satisfies this range, with node-semver's prerelease rule.
    pub fn matches(&self, _version: &semver::Version) -> bool {
        true
    }
}

impl FromStr for VersionRange {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VersionRange::parse(s)
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}
