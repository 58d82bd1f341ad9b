//! Identifiers. Ids are prefixed (`job_`, `ast_`) so a mixed-up id fails validation instead of
//! silently finding nothing, and time-ordered (UUID v7) so they sort roughly by creation.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Held inline (the prefix and 32 hex digits, always ASCII): copying an id, which a
        /// submit does for the record, the store's key and the queue message, allocates nothing.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; Self::LEN]);

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

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
            /// Bytes in an id: the prefix and 32 hex digits.
            const LEN: usize = $prefix.len() + 32;

            /// A new, unique, time-ordered id.
            pub fn generate() -> Self {
                let mut id = [0u8; Self::LEN];
                let (prefix, hex) = id.split_at_mut($prefix.len());
                prefix.copy_from_slice($prefix.as_bytes());
                uuid::Uuid::now_v7().simple().encode_lower(hex);
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
                if !ok {
                    return None;
                }
                let mut id = [0u8; Self::LEN];
                id.copy_from_slice(s.as_bytes());
                Some(Self(id))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                std::str::from_utf8(&self.0).expect("an id holds only ASCII")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name))
                    .field(&self.as_str())
                    .finish()
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
        assert!(JobId::parse(&format!("{}0", id.as_str())).is_none());
        assert_eq!(id.to_string().len(), 36);
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"{}\"", id.as_str())
        );
        assert_eq!(
            serde_json::from_str::<JobId>(&serde_json::to_string(&id).unwrap()).unwrap(),
            id
        );
        assert_eq!(format!("{id:?}"), format!("JobId({:?})", id.as_str()));
    }
}
