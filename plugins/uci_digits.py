"""UCI optical digits (the seed's data): 64 grey levels 0..16 of an 8x8 bitmap, then the digit.

File layout: no header; each line is 65 comma-separated integers.
"""

import reducer

PIXELS = [f"pixel_{row}_{col}" for row in range(8) for col in range(8)]


def load_digits(options):
    import pandas as pd

    path = options.get("path", reducer.DATA / "digits_uci_test_1797.txt")
    frame = pd.read_csv(path, header=None, names=PIXELS + ["digit"], encoding="utf-8-sig")
    frame.attrs.update(source=str(path), first_line=1)
    return frame


def digits_header(options):
    """The columns alone (fixed: the file has no header line), for `reducer check`."""
    import pandas as pd

    frame = pd.DataFrame(columns=PIXELS + ["digit"])
    frame.attrs.update(source=str(options.get("path", reducer.DATA / "digits_uci_test_1797.txt")))
    return frame


@reducer.hookimpl
def register_datasets(register):
    register(reducer.Dataset(
        name="uci_digits", description="UCI optical digits: 8x8 bitmaps, 64 pixels 0..16, label 0..9",
        load=load_digits, header=digits_header, label="digit", features=PIXELS,
        normalize=(0.0, 16.0),  # the seed's pixels / 16, kept fixed so every run has one scale
        options={"path": reducer.Option(str, description="the digits file (default: the built-in copy)")}))
