//! Whether the parts S3 holds are the split a plan describes, and the plan of parts nobody
//! declared.

use std::collections::{HashMap, HashSet};

use super::{Invalid, PartNumber, PartPlan};

/// A part as S3 lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedPart {
    pub part_number: PartNumber,
    pub size: u64,
    pub etag: String,
    /// Base64 SHA-256, present when the upload was created with part checksums.
    pub checksum_sha256: Option<String>,
}

/// A part the client says it uploaded, with the ETag S3 gave it.
#[derive(Debug, Clone)]
pub struct ClaimedPart {
    pub part_number: PartNumber,
    pub etag: String,
}

/// Why the parts S3 holds cannot complete the upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartsError {
    #[error(
        "{missing_count} of {part_count} parts are not uploaded yet (first missing: {first_missing:?})"
    )]
    Incomplete {
        part_count: u64,
        missing_count: usize,
        /// The first 20 missing part numbers.
        first_missing: Vec<u16>,
    },
    #[error("part {part} is {size} bytes; it must be {expected}")]
    PartSize { part: u16, size: u64, expected: u64 },
    /// The parts listed at completion are not the ones S3 holds.
    #[error(transparent)]
    Claimed(Invalid),
    /// A session that declared no size holds parts that follow no plan.
    #[error("cannot complete: {0}")]
    Unmeasurable(String),
}

/// The plan of a session that declared no size, from the parts S3 holds.
pub fn measure(listed: &[ListedPart]) -> Result<PartPlan, PartsError> {
    let sizes: Vec<(PartNumber, u64)> = listed.iter().map(|p| (p.part_number, p.size)).collect();
    PartPlan::measured(&sizes).map_err(PartsError::Unmeasurable)
}

/// The parts to complete with, in order, after checking that S3 holds every planned part at its
/// exact size, and that any parts the client listed are exactly those. Part checksums travel
/// with the parts as S3 lists them: S3 checked each body against its signed checksum at PUT.
pub fn check_parts(
    plan: &PartPlan,
    listed: &[ListedPart],
    claimed: Option<&[ClaimedPart]>,
) -> Result<Vec<ListedPart>, PartsError> {
    let by_number: HashMap<PartNumber, &ListedPart> =
        listed.iter().map(|p| (p.part_number, p)).collect();
    let mut parts = Vec::with_capacity(by_number.len());
    let mut missing = Vec::new();
    for n in plan.parts() {
        match by_number.get(&n) {
            Some(&p) => parts.push(p),
            None => missing.push(n.get()),
        }
    }
    if !missing.is_empty() {
        return Err(PartsError::Incomplete {
            part_count: plan.part_count(),
            missing_count: missing.len(),
            first_missing: missing.into_iter().take(20).collect(),
        });
    }
    if let Some(p) = parts
        .iter()
        .find(|p| p.size != plan.part_len(p.part_number))
    {
        return Err(PartsError::PartSize {
            part: p.part_number.get(),
            size: p.size,
            expected: plan.part_len(p.part_number),
        });
    }
    if let Some(claimed) = claimed {
        check_claimed(plan, &by_number, claimed)?;
    }
    Ok(parts.into_iter().cloned().collect())
}

fn check_claimed(
    plan: &PartPlan,
    held: &HashMap<PartNumber, &ListedPart>,
    claimed: &[ClaimedPart],
) -> Result<(), PartsError> {
    let refuse = |why: String| PartsError::Claimed(Invalid::new("parts", why));
    let mut seen = HashSet::new();
    for c in claimed {
        let n = c.part_number;
        if !seen.insert(n) {
            return Err(refuse(format!("part {n} is listed twice")));
        }
        let Some(part) = held.get(&n).filter(|_| plan.contains(n)) else {
            return Err(refuse(format!(
                "part {n} is outside 1..={}",
                plan.part_count()
            )));
        };
        if c.etag.trim_matches('"') != part.etag {
            return Err(refuse(format!(
                "the etag of part {n} is not the one S3 holds"
            )));
        }
    }
    if seen.len() as u64 != plan.part_count() {
        return Err(refuse(format!(
            "must list every part 1..={} ({} listed)",
            plan.part_count(),
            seen.len()
        )));
    }
    Ok(())
}

/// The ETag S3 gives the object that `parts` complete into: the MD5 of the parts' binary MD5s,
/// then `-` and their count. `None` when a part's ETag is not an MD5 (SSE-KMS, say).
pub fn multipart_etag(parts: &[ListedPart]) -> Option<String> {
    use md5::{Digest, Md5};
    let mut md5 = Md5::new();
    for p in parts {
        let digest = hex::decode(&p.etag).ok().filter(|d| d.len() == 16)?;
        md5.update(digest);
    }
    Some(format!("{}-{}", hex::encode(md5.finalize()), parts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vu_contract::MIB;

    fn p(n: u64) -> PartNumber {
        PartNumber::new(n).unwrap_or_else(|e| panic!("{e}"))
    }

    fn listed(sizes: &[u64]) -> Vec<ListedPart> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| ListedPart {
                part_number: p(i as u64 + 1),
                size,
                etag: format!("etag-{}", i + 1),
                checksum_sha256: None,
            })
            .collect()
    }

    fn claim(n: u64, etag: &str) -> ClaimedPart {
        ClaimedPart {
            part_number: p(n),
            etag: etag.to_owned(),
        }
    }

    fn plan(size: u64) -> PartPlan {
        PartPlan::new(size, Some(5 * MIB), 16 * MIB).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn check_parts_takes_every_planned_part_in_order() {
        let parts = check_parts(&plan(10 * MIB + 3), &listed(&[5 * MIB, 5 * MIB, 3]), None);
        let numbers: Vec<u16> = parts
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|p| p.part_number.get())
            .collect();
        assert_eq!(numbers, [1, 2, 3]);
    }

    #[test]
    fn check_parts_names_missing_and_wrongly_sized_parts() {
        let mut held = listed(&[5 * MIB, 5 * MIB, 3]);
        held.remove(1);
        assert_eq!(
            check_parts(&plan(10 * MIB + 3), &held, None),
            Err(PartsError::Incomplete {
                part_count: 3,
                missing_count: 1,
                first_missing: vec![2],
            })
        );
        assert_eq!(
            check_parts(&plan(10 * MIB + 3), &listed(&[5 * MIB, 5 * MIB, 4]), None),
            Err(PartsError::PartSize {
                part: 3,
                size: 4,
                expected: 3,
            })
        );
    }

    #[test]
    fn claimed_parts_must_be_exactly_the_held_ones() {
        let plan = plan(5 * MIB + 1);
        let held = listed(&[5 * MIB, 1]);
        let ok = [claim(1, "\"etag-1\""), claim(2, "etag-2")];
        assert!(check_parts(&plan, &held, Some(&ok)).is_ok());
        for bad in [
            vec![claim(1, "etag-1")],
            vec![claim(1, "etag-1"), claim(1, "etag-1")],
            vec![claim(1, "etag-1"), claim(2, "other")],
            vec![claim(1, "etag-1"), claim(2, "etag-2"), claim(3, "etag-3")],
        ] {
            let err = check_parts(&plan, &held, Some(&bad));
            assert!(
                matches!(&err, Err(PartsError::Claimed(i)) if i.field == "parts"),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn measure_explains_parts_that_follow_no_plan() {
        assert_eq!(
            measure(&listed(&[5 * MIB, 7])).map(|p| p.size()),
            Ok(5 * MIB + 7)
        );
        assert!(matches!(
            measure(&listed(&[5 * MIB, 6 * MIB])),
            Err(PartsError::Unmeasurable(_))
        ));
    }

    #[test]
    fn a_multipart_etag_is_the_md5_of_the_part_md5s_and_their_count() {
        let listed = |n: u64, etag: &str| ListedPart {
            part_number: p(n),
            size: 1,
            etag: etag.into(),
            checksum_sha256: None,
        };
        // MD5("a") and MD5("b"); S3 names "ab" uploaded in those two parts so (python: hashlib).
        let parts = [
            listed(1, "0cc175b9c0f1b6a831c399e269772661"),
            listed(2, "92eb5ffee6ae2fec3ad71c777531578f"),
        ];
        assert_eq!(
            multipart_etag(&parts).as_deref(),
            Some("96e024ba2074fe77e8e965ba43a704be-2")
        );
        assert_eq!(multipart_etag(&[listed(1, "not-an-md5")]), None);
    }
}
