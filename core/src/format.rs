//! The original's number formatting (spec §1.2–§1.3) and Python-style number text for log lines.
//! Written by the position-math work.

/// `format_price(price)`.
pub fn format_price(price: f64) -> String {
    let _ = price;
    todo!("format")
}

/// `format_pnl_usd(pnl_usd)`.
pub fn format_pnl_usd(pnl_usd: f64) -> String {
    let _ = pnl_usd;
    todo!("format")
}
