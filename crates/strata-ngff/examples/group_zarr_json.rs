//! Prints the group `zarr.json` Strata writes for a z-stack, followed by one
//! line per level with its shape.
//!
//! ```sh
//! cargo run -p strata-ngff --example group_zarr_json -- 1 30 4096 4096 5
//! ```
//! Arguments: c z y x levels (defaults: 1 30 4096 4096 5); pixel size
//! 0.25 um in y and x, 2 um in z; y and x halve per level.

use strata_ngff::MultiscaleBuilder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>())
        .collect::<Result<_, _>>()?;
    let get = |i: usize, default: u64| args.get(i).copied().unwrap_or(default);
    let levels = usize::try_from(get(4, 5))?;
    let builder = MultiscaleBuilder::czyx(
        [get(0, 1), get(1, 30), get(2, 4096), get(3, 4096)],
        [2.0, 0.25, 0.25],
        ["micrometer"; 3],
        [1, 2, 2],
        levels,
    )
    .name("z-stack")
    .downscale_type("mean");
    println!(
        "{}",
        serde_json::to_string_pretty(&builder.group_zarr_json()?)?
    );
    for shape in builder.level_shapes()? {
        println!("{}", serde_json::to_string(&shape)?);
    }
    Ok(())
}
