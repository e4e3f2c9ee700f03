//! The closed sets of the grid and its verdicts: the four levels of the unit tree, the four
//! categories of units, and the traffic-light status of an indicator. Codes are what the
//! warehouse stores; labels are what people read.

use std::fmt;

use super::kinds::{self, CATEGORIES, LEVELS};

/// An enum of codes: `ALL` in order, `code`, `parse` (of a code; `None` for anything else),
/// `Display` as the code, and serde as the code. One definition for the three sets below,
/// which differ only in their names and codes.
macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $code)] $variant),+
        }

        impl $name {
            pub const ALL: [$name; [$($code),+].len()] = [$($name::$variant),+];

            pub fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code),+
                }
            }

            pub fn parse(code: &str) -> Option<$name> {
                $name::ALL.into_iter().find(|x| x.code() == code)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

closed_set! {
    /// A level of the four-level grid (区 → 街道/镇 → 村/社区 → 支部).
    Level { District => "district", Township => "township", Community => "community", Branch => "branch" }
}

closed_set! {
    /// A category of units; each runs one of the plan's four unit projects.
    Category { Community => "community", Rural => "rural", Organ => "organ", Nonpublic => "nonpublic" }
}

closed_set! {
    /// An indicator's verdict against its thresholds, or the absence of one: a unit none of
    /// whose branches reported in the period is `NoData` where attendance is measured, never red.
    Status { Red => "red", Amber => "amber", Green => "green", NoData => "no_data" }
}

impl Level {
    /// The levels below the district, which are ranked, graded and drawn from.
    pub const GRADED: [Level; 3] = [Level::Township, Level::Community, Level::Branch];

    pub fn label(self) -> &'static str {
        kinds::label_of(LEVELS, self.code())
    }
}

impl Category {
    pub fn label(self) -> &'static str {
        kinds::label_of(CATEGORIES, self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_back_and_labels_come_from_the_input_contract() {
        for l in Level::ALL {
            assert_eq!(Level::parse(l.code()), Some(l));
        }
        for c in Category::ALL {
            assert_eq!(Category::parse(c.code()), Some(c));
        }
        for s in Status::ALL {
            assert_eq!(Status::parse(s.code()), Some(s));
        }
        assert_eq!(Level::Community.label(), "村/社区");
        assert_eq!(Category::Nonpublic.label(), "非公企业和社会组织");
        assert_eq!(Level::parse("grid"), None);
        // serde reads and writes the codes (pipeline files name levels this way).
        assert_eq!(serde_json::to_string(&Level::Branch).unwrap(), "\"branch\"");
        assert_eq!(serde_json::from_str::<Category>("\"organ\"").unwrap(), Category::Organ);
    }
}
