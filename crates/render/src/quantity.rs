//! Kubernetes resource quantities in the API server's canonical form, so a
//! rendered object compares equal to what the cluster stores (`1000m` is `1`,
//! `1024Mi` is `1Gi`, `0.5` is `500m`) and an agent never sees false drift.

/// Parses and canonicalizes a quantity; `None` if it is not one.
pub fn canonical(text: &str) -> Option<String> {
    let text = text.trim();
    let (sign, body) = match text.strip_prefix('-') {
        Some(rest) => (-1i128, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let number_end = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(body.len());
    let (number, suffix) = body.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{whole}{fraction}");
    if digits.len() > 30 {
        return None;
    }
    let mut mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    let mut exponent: i32 = -(fraction.len() as i32);
    let mut binary = false;
    match suffix {
        "" => {}
        "n" => exponent -= 9,
        "u" => exponent -= 6,
        "m" => exponent -= 3,
        "k" => exponent += 3,
        "M" => exponent += 6,
        "G" => exponent += 9,
        "T" => exponent += 12,
        "P" => exponent += 15,
        "E" => exponent += 18,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].iter().position(|s| *s == suffix)? as u32 + 1;
            mantissa = mantissa.checked_mul(1024i128.checked_pow(power)?)?;
            binary = true;
        }
        _ => {
            let rest = suffix.strip_prefix('e').or_else(|| suffix.strip_prefix('E'))?;
            exponent += rest.parse::<i32>().ok()?;
        }
    }
    if mantissa == 0 {
        return Some("0".into());
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent += 1;
    }
    // The API server keeps nothing finer than nano units, rounding up.
    if exponent < -9 {
        let shift = 10i128.checked_pow((-9 - exponent) as u32)?;
        mantissa = (mantissa + shift - 1) / shift;
        exponent = -9;
    }
    if binary && exponent >= 0 {
        let value = mantissa.checked_mul(10i128.checked_pow(exponent as u32)?)?;
        if value >= 1024 {
            let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
            let mut power = 0;
            let mut scaled = value;
            while power < 6 && scaled % 1024 == 0 {
                scaled /= 1024;
                power += 1;
            }
            return Some(format!("{}{}", sign * scaled, suffixes[power]));
        }
    }
    let canonical_exponent = exponent.div_euclid(3) * 3;
    let canonical_exponent = canonical_exponent.min(18);
    let scaled = mantissa.checked_mul(10i128.checked_pow((exponent - canonical_exponent) as u32)?)?;
    let suffix = match canonical_exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        _ => "E",
    };
    Some(format!("{}{suffix}", sign * scaled))
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn matches_the_api_server() {
        for (input, expected) in [
            ("1000m", "1"),
            ("1", "1"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("250m", "250m"),
            ("0.1", "100m"),
            ("1000", "1k"),
            ("128974848", "128974848"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("512", "512"),
            ("0.5Ki", "512"),
            ("256Mi", "256Mi"),
            ("1e3", "1k"),
            ("0", "0"),
            ("0Mi", "0"),
            ("-100m", "-100m"),
            ("2G", "2G"),
        ] {
            assert_eq!(canonical(input).as_deref(), Some(expected), "{input}");
        }
        for bad in ["", "abc", "1.2.3", "10Zi", "m", "1.5x"] {
            assert_eq!(canonical(bad), None, "{bad:?}");
        }
    }
}
