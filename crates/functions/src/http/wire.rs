//! Core values in the API's JSON, as the schemas the OpenAPI document names: the core derives
//! no schemas, so the answers that carry these values hold them in these types.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use vu_core::domain::PartNumber;
use vu_core::{domain, ports};

/// A server-generated upload id: a ULID (26 characters of Crockford's base 32).
#[derive(Serialize, ToSchema)]
#[serde(transparent)]
#[schema(
    value_type = String,
    pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$"
)]
pub struct UploadId(pub domain::UploadId);

/// A part URL and the headers its PUT must carry exactly (they are signed).
#[derive(Serialize, ToSchema)]
pub struct SignedPart {
    part_number: PartNumber,
    url: String,
    headers: BTreeMap<String, String>,
}

impl From<ports::SignedPart> for SignedPart {
    fn from(p: ports::SignedPart) -> Self {
        Self {
            part_number: p.part_number,
            url: p.url,
            headers: p.headers,
        }
    }
}
