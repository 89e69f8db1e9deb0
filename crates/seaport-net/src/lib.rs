//! seaport-net (being written).
