//! Prints the whole-brain plan as Markdown tables (the numbers in the README) and writes the
//! chart: `cargo run -p strata-plan --example whole_brain -- [chart.svg]`.

use strata_plan::{
    AnnexMode, AnnexOptions, Grouping, Layout, PlanInput, plan, predict, recommend, render_svg,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let brain = PlanInput::whole_brain();
    let shown = [
        Grouping::None,
        Grouping::PerSections(1),
        Grouping::PerSections(10),
        Grouping::PerSections(100),
        Grouping::PerSections(1000),
        Grouping::PerSections(2000),
    ];
    let rows = plan(&brain, 3_000_000)?;
    for annex in AnnexMode::ALL {
        println!("\ngit-annex: {}\n", annex.name());
        println!(
            "| layout | grouping | datasets | inodes without DataLad | before gc | after gc | fullest dir | largest dataset (files) | 3M | 500k |"
        );
        println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |");
        for r in rows
            .iter()
            .filter(|r| r.annex == annex && shown.contains(&r.grouping))
        {
            let fits = |q: u64| if r.inodes_after_gc <= q { "yes" } else { "no" };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.layout.name(),
                r.grouping.name(),
                r.datasets,
                r.inodes_plain,
                r.inodes_before_gc,
                r.inodes_after_gc,
                r.largest_dir,
                r.largest_dataset_files,
                fits(3_000_000),
                fits(500_000),
            );
        }
    }
    for quota in [3_000_000, 500_000, 350_000] {
        let rows = plan(&brain, quota)?;
        if let Some(rec) = recommend(&rows, quota) {
            println!(
                "\nquota {quota}: {} / {} / {}",
                rec.row.layout.name(),
                rec.row.grouping.name(),
                rec.row.annex.name()
            );
            for reason in rec.reasons {
                println!("- {reason}");
            }
        }
    }
    println!("\nVariants of zarr-v3-sharded, one subdataset per 2,000 sections:\n");
    println!("| variant | inodes without DataLad | before gc | after gc |");
    println!("| --- | ---: | ---: | ---: |");
    let variants = [
        (
            "10 levels (down to one chunk), git-annex defaults",
            brain.clone(),
        ),
        (
            "10 levels, objecthash1",
            PlanInput {
                annex: AnnexOptions {
                    objecthash1: true,
                    thin_unlocked: false,
                },
                ..brain.clone()
            },
        ),
        (
            "10 levels, thin unlocked",
            PlanInput {
                annex: AnnexOptions {
                    objecthash1: false,
                    thin_unlocked: true,
                },
                ..brain.clone()
            },
        ),
        (
            "10 levels, objecthash1 + thin unlocked",
            PlanInput {
                annex: AnnexOptions::TUNED,
                ..brain.clone()
            },
        ),
        (
            "8 levels, git-annex defaults",
            PlanInput {
                levels: Some(8),
                ..brain.clone()
            },
        ),
        (
            "7 levels, git-annex defaults",
            PlanInput {
                levels: Some(7),
                ..brain.clone()
            },
        ),
        (
            "10 levels, one shard per plane (z = 1), defaults",
            PlanInput {
                shard: Some((1, 1 << 20, 1 << 20)),
                ..brain.clone()
            },
        ),
    ];
    for (name, input) in variants {
        let p = predict(&input, Layout::ZarrV3Sharded, Grouping::PerSections(2000))?;
        println!(
            "| {name} | {} | {} | {} |",
            p.inodes_plain, p.inodes_before_gc, p.inodes_after_gc
        );
    }
    println!("\nStored bytes (uncompressed; scale by the codec's ratio):\n");
    for layout in Layout::ALL {
        let p = predict(&brain, layout, Grouping::PerSections(2000))?;
        #[allow(clippy::cast_precision_loss)]
        let pb = p.bytes as f64 / 1e15;
        println!("- {}: {pb:.2} PB", layout.name());
    }
    if let Some(path) = std::env::args().nth(1) {
        let svg = render_svg(
            &brain,
            &[
                (Layout::RawTiff, AnnexOptions::DEFAULT),
                (Layout::ZarrV3Sharded, AnnexOptions::DEFAULT),
                (Layout::ZarrV3Sharded, AnnexOptions::TUNED),
                (Layout::Ozx, AnnexOptions::DEFAULT),
            ],
            &[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
            &[
                ("project quota", 3_000_000),
                ("archive quota", 500_000),
                ("target", 350_000),
            ],
        )?;
        std::fs::write(path, svg)?;
    }
    Ok(())
}
