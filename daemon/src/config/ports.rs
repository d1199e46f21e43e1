//! `[api] port`: one port (`48443`, or `0` for any free one) or a range (`"48443-48543"`).
//!
//! A range is for terminal servers, where every agent's daemon runs on the same machine: each
//! takes the first free port of the range and records it in its `daemon.json`; the shim finds
//! its own user's daemon by trying the range (other users' daemons refuse it).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The ports the API may listen on, `first..=last`; `0..=0` asks the OS for any free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    first: u16,
    last: u16,
}

/// Why a `port` value is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortsError {
    #[error("`{0}` is not a port or a range like \"48443-48543\"")]
    Syntax(String),
    #[error("the range {first}-{last} is empty (the first port must not be above the last)")]
    Empty { first: u16, last: u16 },
    #[error("a range cannot include port 0 (0 alone means any free port)")]
    ZeroInRange,
    #[error(
        "a range of {count} ports is too long: at most {MAX_RANGE} (one per agent on the machine)"
    )]
    TooLong { count: u32 },
}

/// The most ports a range may have: the shim tries each when it looks for its daemon.
pub const MAX_RANGE: u32 = 1000;

impl Ports {
    pub const fn single(port: u16) -> Self {
        Self {
            first: port,
            last: port,
        }
    }

    pub fn range(first: u16, last: u16) -> Result<Self, PortsError> {
        if first > last {
            return Err(PortsError::Empty { first, last });
        }
        if first == 0 && last != 0 {
            return Err(PortsError::ZeroInRange);
        }
        let count = u32::from(last - first) + 1;
        if count > MAX_RANGE {
            return Err(PortsError::TooLong { count });
        }
        Ok(Self { first, last })
    }

    pub fn first(self) -> u16 {
        self.first
    }

    pub fn last(self) -> u16 {
        self.last
    }

    /// The ports to try, lowest first.
    pub fn iter(self) -> impl Iterator<Item = u16> {
        self.first..=self.last
    }

    pub fn is_range(self) -> bool {
        self.first != self.last
    }
}

impl std::str::FromStr for Ports {
    type Err = PortsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let number = |part: &str| {
            part.trim()
                .parse::<u16>()
                .map_err(|_| PortsError::Syntax(text.to_owned()))
        };
        match text.split_once('-') {
            Some((first, last)) => Self::range(number(first)?, number(last)?),
            None => Ok(Self::single(number(text)?)),
        }
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_range() {
            write!(f, "{}-{}", self.first, self.last)
        } else {
            write!(f, "{}", self.first)
        }
    }
}

impl Serialize for Ports {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_range() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_u16(self.first)
        }
    }
}

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u16),
            Text(String),
        }
        let raw = Raw::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("expected a port (0-65535) or a range like \"48443-48543\"")
        })?;
        match raw {
            Raw::Number(port) => Ok(Self::single(port)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_or_a_range_reads_and_prints_back_the_same() {
        assert_eq!("48443".parse(), Ok(Ports::single(48443)));
        let range: Ports = "48443-48543".parse().expect("a range");
        assert_eq!((range.first(), range.last()), (48443, 48543));
        assert_eq!(range.iter().count(), 101);
        assert_eq!(range.to_string(), "48443-48543");
        assert_eq!(
            toml::to_string(&Holder { port: range }).expect("toml"),
            "port = \"48443-48543\"\n"
        );
        assert_eq!(
            toml::to_string(&Holder {
                port: Ports::single(9)
            })
            .expect("toml"),
            "port = 9\n"
        );
        let read: Holder = toml::from_str("port = \" 2000 - 2001 \"").expect("spaces allowed");
        assert_eq!(read.port, Ports::range(2000, 2001).expect("range"));
    }

    #[test]
    fn nonsense_ranges_say_what_is_wrong() {
        assert_eq!(
            "2001-2000".parse::<Ports>(),
            Err(PortsError::Empty {
                first: 2001,
                last: 2000
            })
        );
        assert_eq!("0-10".parse::<Ports>(), Err(PortsError::ZeroInRange));
        assert_eq!(
            "2000-3000".parse::<Ports>(),
            Err(PortsError::TooLong { count: 1001 })
        );
        assert!("2000-2999".parse::<Ports>().is_ok());
        assert_eq!(
            "80-http".parse::<Ports>(),
            Err(PortsError::Syntax("80-http".into()))
        );
        assert_eq!(
            "70000".parse::<Ports>(),
            Err(PortsError::Syntax("70000".into()))
        );
        let err = toml::from_str::<Holder>("port = -1").expect_err("negative");
        assert!(err.to_string().contains("expected a port"), "{err}");
        let err = toml::from_str::<Holder>("port = \"9-8\"").expect_err("empty");
        assert!(err.to_string().contains("is empty"), "{err}");
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Holder {
        port: Ports,
    }
}
