//! Deserialization of [`FetchOutcome`], written by hand for speed.
//!
//! serde's derived form of an internally tagged enum cannot know the variant before it has
//! seen the `kind` field, so it first copies the whole object into a generic buffer and
//! then reads the buffer again. A page response with its thousands of links made that copy
//! about half of the admin's decoding time. Every producer of this crate writes `kind`
//! first, so this reads the variant's fields straight from the input when `kind` comes
//! first, and buffers only when it does not.

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::{BlockReason, FetchFailure, FetchOutcome, PageResponse};

/// The values of the `kind` field.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutcomeKind {
    Response,
    Failed,
    Blocked,
    Deferred,
}

#[derive(Deserialize)]
struct BlockedFields {
    reason: BlockReason,
}

#[derive(Deserialize)]
struct DeferredFields {
    reason: String,
    retry_after_secs: u32,
}

impl<'de> Deserialize<'de> for FetchOutcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(OutcomeVisitor)
    }
}

struct OutcomeVisitor;

impl<'de> Visitor<'de> for OutcomeVisitor {
    type Value = FetchOutcome;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a fetch outcome object with a `kind` field")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FetchOutcome, A::Error> {
        let first_key: Option<String> = map.next_key()?;
        if first_key.as_deref() == Some("kind") {
            let kind: OutcomeKind = map.next_value()?;
            return outcome_fields(kind, MapAccessDeserializer::new(map));
        }

        let mut object = serde_json::Map::new();
        if let Some(key) = first_key {
            object.insert(key, map.next_value()?);
        }
        while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
            object.insert(key, value);
        }
        let kind = object.remove("kind").ok_or_else(|| de::Error::missing_field("kind"))?;
        let kind = OutcomeKind::deserialize(kind).map_err(de::Error::custom)?;
        outcome_fields(kind, serde_json::Value::Object(object)).map_err(de::Error::custom)
    }
}

/// Read the fields of the variant `kind` from the rest of the object.
fn outcome_fields<'de, D: Deserializer<'de>>(kind: OutcomeKind, fields: D) -> Result<FetchOutcome, D::Error> {
    Ok(match kind {
        OutcomeKind::Response => FetchOutcome::Response(PageResponse::deserialize(fields)?),
        OutcomeKind::Failed => FetchOutcome::Failed(FetchFailure::deserialize(fields)?),
        OutcomeKind::Blocked => FetchOutcome::Blocked { reason: BlockedFields::deserialize(fields)?.reason },
        OutcomeKind::Deferred => {
            let DeferredFields { reason, retry_after_secs } = DeferredFields::deserialize(fields)?;
            FetchOutcome::Deferred { reason, retry_after_secs }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{FetchErrorKind, Link};

    fn outcomes() -> Vec<FetchOutcome> {
        let link = Link {
            href: "/a".into(),
            url: "http://example.com/a".into(),
            anchor_text: "A".into(),
            nofollow: false,
            ugc: true,
            sponsored: false,
        };
        vec![
            FetchOutcome::Response(PageResponse { status: 200, links: vec![link], ..Default::default() }),
            FetchOutcome::Failed(FetchFailure { error_kind: FetchErrorKind::Timeout, message: "timed out".into() }),
            FetchOutcome::Blocked { reason: BlockReason::RobotsTxt },
            FetchOutcome::Deferred { reason: "robots.txt returned 503".into(), retry_after_secs: 60 },
        ]
    }

    #[test]
    fn every_variant_round_trips() {
        for outcome in outcomes() {
            let json = serde_json::to_string(&outcome).unwrap();
            assert!(json.starts_with(r#"{"kind":"#), "{json}");
            let decoded: FetchOutcome = serde_json::from_str(&json).unwrap();
            assert_eq!(decoded, outcome);
        }
    }

    #[test]
    fn kind_after_other_fields_decodes() {
        for outcome in outcomes() {
            let mut value = serde_json::to_value(&outcome).unwrap();
            let kind = value.as_object_mut().unwrap().remove("kind").unwrap();
            let fields = serde_json::to_string(&value).unwrap();
            let json = format!(r#"{},"kind":{kind}}}"#, fields.strip_suffix('}').unwrap());
            assert!(!json.starts_with(r#"{"kind":"#), "{json}");
            let decoded: FetchOutcome = serde_json::from_str(&json).unwrap();
            assert_eq!(decoded, outcome);
        }
    }

    #[test]
    fn missing_kind_is_rejected() {
        let error = serde_json::from_str::<FetchOutcome>(r#"{"reason":"robots_txt"}"#).unwrap_err();
        assert!(error.to_string().contains("missing field `kind`"), "{error}");
    }

    #[test]
    fn unknown_kind_is_rejected() {
        let error = serde_json::from_str::<FetchOutcome>(r#"{"kind":"teapot"}"#).unwrap_err();
        assert!(error.to_string().contains("unknown variant `teapot`"), "{error}");
    }

    #[test]
    fn missing_variant_field_is_rejected() {
        let error = serde_json::from_str::<FetchOutcome>(r#"{"kind":"deferred","reason":"x"}"#).unwrap_err();
        assert!(error.to_string().contains("missing field `retry_after_secs`"), "{error}");
    }
}
