use std::net::IpAddr;

/// Checks an IPv4 or IPv6 network in CIDR notation, such as `203.0.113.0/24` or `2001:db8::/32`.
pub fn check_cidr(text: &str) -> Result<(), String> {
    let invalid = |why: &str| format!("invalid CIDR `{text}`: {why}; expected a form such as 203.0.113.0/24 or 2001:db8::/32");
    let (address, prefix) = text.split_once('/').ok_or_else(|| invalid("no prefix length"))?;
    let address: IpAddr = address.parse().map_err(|_| invalid("not an IP address"))?;
    let prefix: u8 = prefix.parse().map_err(|_| invalid("prefix length is not a number"))?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(invalid(&format!("prefix length {prefix} is over {max}")));
    }

    let host_bits_set = match address {
        IpAddr::V4(v4) => prefix < 32 && u32::from(v4) & (u32::MAX >> prefix) != 0,
        IpAddr::V6(v6) => prefix < 128 && u128::from(v6) & (u128::MAX >> prefix) != 0,
    };
    if host_bits_set {
        return Err(invalid("bits are set after the prefix length"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_accepts_networks() {
        for ok in ["10.0.0.0/8", "203.0.113.7/32", "0.0.0.0/0", "2001:db8::/32", "::/0"] {
            assert_eq!(check_cidr(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn cidr_rejects_bad_forms() {
        for (bad, why) in [
            ("10.0.0.0", "no prefix length"),
            ("10.0.0.0/33", "over 32"),
            ("10.0.0.1/24", "bits are set"),
            ("example.com/24", "not an IP address"),
            ("10.0.0.0/x", "not a number"),
        ] {
            let err = check_cidr(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }
}
