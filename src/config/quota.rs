//! `[quota]`: the storage quota of accounts that have none of their own, and
//! the one reading of quota amounts (`"500M"`, `"2G"`, `"none"`), shared with
//! `mes user quota`.

use serde::Deserialize;

/// `[quota]` as written: each value a number or a string.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawQuotaSettings {
    pub(super) storage: Option<Amount>,
    pub(super) messages: Option<Amount>,
}

/// A quota amount as written: a number, or text with a unit or `none`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Amount {
    Number(u64),
    Text(String),
}

impl Amount {
    fn text(&self) -> String {
        match self {
            Amount::Number(n) => n.to_string(),
            Amount::Text(t) => t.clone(),
        }
    }
}

/// `[quota]`: the limits of every account the operator gave none of its own
/// (RFC 9208 resources; `None`: no limit). What they mean on delivery is
/// `delivery::quota`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaSettings {
    /// KiB of mail per account, all folders together (STORAGE).
    pub storage_kib: Option<u64>,
    /// Messages per account, all folders together (MESSAGE).
    pub messages: Option<u64>,
}

impl RawQuotaSettings {
    /// Checks the values; `Err((key, message))` names the bad one.
    pub(super) fn validate(&self) -> Result<QuotaSettings, (&'static str, String)> {
        let storage = match &self.storage {
            Some(a) => parse_storage(&a.text()).map_err(|e| ("storage", e))?,
            None => None,
        };
        let messages = match &self.messages {
            Some(a) => parse_count(&a.text()).map_err(|e| ("messages", e))?,
            None => None,
        };
        Ok(QuotaSettings {
            storage_kib: storage,
            messages,
        })
    }
}

/// Reads a storage amount into KiB (rounded up): octets, or a number with
/// `K`, `M`, `G` or `T` (powers of 1024, an optional `B` or `iB` after it);
/// `none` (or `unlimited`): no limit.
pub fn parse_storage(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    if is_none(t) {
        return Ok(None);
    }
    let upper = t.to_ascii_uppercase();
    let unit_start = upper
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(upper.len());
    let (digits, unit) = upper.split_at(unit_start);
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(format!(
                "`{text}` is not an amount such as 500M, 2G or none"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not an amount such as 500M, 2G or none"))?;
    let octets = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))?;
    Ok(Some(octets.div_ceil(1024)))
}

/// Reads a message count; `none` (or `unlimited`): no limit.
pub fn parse_count(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    if is_none(t) {
        return Ok(None);
    }
    t.parse()
        .map(Some)
        .map_err(|_| format!("`{text}` is not a number of messages or none"))
}

fn is_none(t: &str) -> bool {
    t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("unlimited")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_amounts() {
        assert_eq!(parse_storage("500M"), Ok(Some(500 * 1024)));
        assert_eq!(parse_storage("2G"), Ok(Some(2 * 1024 * 1024)));
        assert_eq!(parse_storage("2 GiB"), Ok(Some(2 * 1024 * 1024)));
        assert_eq!(parse_storage("10kb"), Ok(Some(10)));
        assert_eq!(parse_storage("1T"), Ok(Some(1 << 30)));
        // Octets, rounded up to whole KiB.
        assert_eq!(parse_storage("1025"), Ok(Some(2)));
        assert_eq!(parse_storage("0"), Ok(Some(0)));
        assert_eq!(parse_storage("none"), Ok(None));
        assert_eq!(parse_storage("Unlimited"), Ok(None));
        for bad in ["", "M", "5X", "-1", "1.5G", "99999999999T"] {
            assert!(parse_storage(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("100000"), Ok(Some(100_000)));
        assert_eq!(parse_count("none"), Ok(None));
        assert!(parse_count("10k").is_err());
    }
}
