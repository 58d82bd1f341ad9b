//! Identifiers. Ids are prefixed (`job_`, `ast_`) so a mixed-up id fails validation instead of
//! silently finding nothing, and time-ordered (UUID v7) so they sort roughly by creation.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "expected an id like {}<32 hex digits>",
                        $prefix
                    ))
                })
            }
        }

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new, unique, time-ordered id.
            pub fn generate() -> Self {
                let mut buf = uuid::Uuid::encode_buffer();
                let hex = uuid::Uuid::now_v7().simple().encode_lower(&mut buf);
                let mut id = String::with_capacity($prefix.len() + hex.len());
                id.push_str($prefix);
                id.push_str(hex);
                Self(id)
            }

            /// Accepts exactly the shape [`Self::generate`] produces: the prefix and 32 lowercase
            /// hex digits. Anything else is not an id of ours.
            pub fn parse(s: &str) -> Option<Self> {
                let rest = s.strip_prefix($prefix)?;
                let ok = rest.len() == 32
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                ok.then(|| Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(JobId, "job_", "A render job's id, e.g. `job_0193...`.");
prefixed_id!(
    AssetId,
    "ast_",
    "An uploaded asset's id, e.g. `ast_0193...`."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_others_do_not() {
        let id = JobId::generate();
        assert_eq!(JobId::parse(id.as_str()), Some(id.clone()));
        assert!(AssetId::parse(id.as_str()).is_none());
        assert!(JobId::parse("job_../../etc/passwd").is_none());
        assert!(JobId::parse("job_0193ABCDEF0123456789abcdef012345").is_none());
        assert!(JobId::parse("").is_none());
    }
}
