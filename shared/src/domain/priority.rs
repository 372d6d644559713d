//! Priority as casesync stores it: `P0`..`P4`, the integers 0..4 in the mapping (docs/ARCHITECTURE.md#data-model).
//! Each adapter maps its own vocabulary to these five values.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Priority {
    P0,
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    pub const ALL: [Priority; 5] = [
        Priority::P0,
        Priority::P1,
        Priority::P2,
        Priority::P3,
        Priority::P4,
    ];

    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(index: u8) -> Option<Priority> {
        Priority::ALL.get(usize::from(index)).copied()
    }

    /// From `"P0"`..`"P4"`.
    pub fn parse(text: &str) -> Option<Priority> {
        let digit = text.strip_prefix('P')?;
        digit.parse::<u8>().ok().and_then(Priority::from_index)
    }

    pub fn as_str(self) -> &'static str {
        ["P0", "P1", "P2", "P3", "P4"][usize::from(self.index())]
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Priority> for u8 {
    fn from(p: Priority) -> u8 {
        p.index()
    }
}

impl TryFrom<u8> for Priority {
    type Error = String;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Priority::from_index(value).ok_or_else(|| format!("priority {value} is not in 0..4"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_map_to_0_through_4_and_back() {
        for (i, p) in Priority::ALL.iter().enumerate() {
            assert_eq!(usize::from(p.index()), i);
            assert_eq!(Priority::from_index(i as u8), Some(*p));
            assert_eq!(Priority::parse(p.as_str()), Some(*p));
        }
        assert_eq!(Priority::from_index(5), None);
        assert_eq!(Priority::parse("P5"), None);
        assert_eq!(Priority::parse("high"), None);
        assert_eq!(serde_json::to_string(&Priority::P3).unwrap(), "3");
        assert!(serde_json::from_str::<Priority>("7").is_err());
    }
}
