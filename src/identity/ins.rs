//! The INS matricule (NIR or NIA plus its control key), the patient's identifier.
//!
//! A matricule is 15 characters: the 13-character NIR (digits, with `2A`/`2B`
//! allowed as the Corsican department at positions 6–7) and a 2-digit key equal
//! to 97 − (NIR mod 97), where 2A is read as 19 and 2B as 18.

/// Why a string is not an INS matricule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsError {
    /// Not 15 characters.
    #[error("an INS has 15 characters (13 for the NIR, 2 for the key), not {0}")]
    Length(usize),
    /// A letter or symbol where a digit is required.
    #[error("an INS holds digits only, except 2A or 2B for the department")]
    Character,
    /// The key does not match the NIR.
    #[error("the INS key is wrong")]
    Key,
}

/// A validated INS matricule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ins(String);

impl Ins {
    /// Validates `s` (upper-casing the 2A/2B letters).
    pub fn parse(s: &str) -> Result<Ins, InsError> {
        let s = s.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() != 15 {
            return Err(InsError::Length(s.chars().count()));
        }
        let mut digits = String::with_capacity(13);
        for (i, &c) in b[..13].iter().enumerate() {
            if c.is_ascii_digit() {
                digits.push(c as char);
            } else if i == 6 && b[5] == b'2' && (c == b'A' || c == b'B') {
                digits.pop();
                digits.push_str(if c == b'A' { "19" } else { "18" });
            } else {
                return Err(InsError::Character);
            }
        }
        if !b[13..].iter().all(u8::is_ascii_digit) {
            return Err(InsError::Character);
        }
        let nir: u64 = digits.parse().map_err(|_| InsError::Character)?;
        let key: u64 = s[13..].parse().map_err(|_| InsError::Character)?;
        if 97 - nir % 97 != key {
            return Err(InsError::Key);
        }
        Ok(Ins(s))
    }

    /// The 15-character matricule.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_keys_are_accepted() {
        // The ANS test patient of the corpus.
        assert!(Ins::parse("279035121518989").is_ok());
        // 1 84 12 76 451 089 key 46 (a classic published example).
        assert!(Ins::parse("184127645108946").is_ok());
    }

    #[test]
    fn corsica_is_read_as_19_and_18() {
        // NIR 1 80 01 2A 123 456: with 2A read as 19, 1800119123456 mod 97 = 78, key 19.
        let nir_a: u64 = 1800119123456;
        let key_a = 97 - nir_a % 97;
        assert!(Ins::parse(&format!("18001{}123456{key_a:02}", "2A")).is_ok());
        let nir_b: u64 = 1800118123456;
        let key_b = 97 - nir_b % 97;
        assert!(Ins::parse(&format!("18001{}123456{key_b:02}", "2b")).is_ok());
        assert_eq!(
            Ins::parse(&format!("18001{}123456{key_b:02}", "2A")),
            Err(InsError::Key)
        );
    }

    #[test]
    fn wrong_keys_and_shapes_are_rejected() {
        assert_eq!(Ins::parse("279035121518988"), Err(InsError::Key));
        assert_eq!(Ins::parse("27903512151898"), Err(InsError::Length(14)));
        assert_eq!(Ins::parse("2790351215189890"), Err(InsError::Length(16)));
        assert_eq!(Ins::parse("27903512151898X"), Err(InsError::Character));
        assert_eq!(Ins::parse("2790351C1518989"), Err(InsError::Character));
        assert_eq!(Ins::parse("27903A1215189 89"), Err(InsError::Length(16)));
        // A or B only after a 2 in the department position.
        assert_eq!(Ins::parse("180013A12345600"), Err(InsError::Character));
    }
}
