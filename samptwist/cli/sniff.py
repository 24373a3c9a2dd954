"""
Guess the MType that loads a data file (for C{samptwist load}): VOTable,
FITS image, FITS table, or a spectrum in either format.  FITS headers are
read here directly (80-character cards in 2880-byte blocks), so astropy is
not needed; gzip-compressed files are read through L{gzip}.

Spectrum rules (MT-SPEC-1): a FITS HDU with C{VOCLASS = 'SPECTRUM...'}, a
1-d primary image with a spectral C{CTYPE1}, a binary table with spectral
utypes (C{TUTYPEn} mentioning C{spec:} or C{Spectrum.Data}) or with both a
wavelength-like and a flux column; a VOTable with a C{spec:}/C{ssa:} utype
or an C{Spectrum} utype.  Everything else is an image or a table as its HDUs
say (MT-IMG-1, MT-TABLE-1, MT-TABLE-2).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from typing import IO, Any, Dict, List, Optional

from ..constants import IMAGE_LOAD_FITS as FITS_IMAGE
from ..constants import SPECTRUM_LOAD_SSA as SPECTRUM
from ..constants import TABLE_LOAD_FITS as FITS_TABLE
from ..constants import TABLE_LOAD_VOTABLE as VOTABLE

BLOCK = 2880
CARD = 80
#: how much of a VOTable is read to recognise it and look for utypes
VOTABLE_HEAD = 256 * 1024
#: at most this many HDUs are examined
MAX_HDUS = 64

_SPECTRAL_CTYPE = re.compile(r"^(WAVE|FREQ|ENER|WAVN|VRAD|VOPT|ZOPT|AWAV|VELO|BETA|LAMBDA)")
_WAVE_COLUMN = re.compile(r"^(wave|wavelength|lambda|freq|frequency|energy|spectral_axis|loglam)",
                          re.IGNORECASE)
_FLUX_COLUMN = re.compile(r"^(flux|flux_density|fluxdensity|intensity|counts|spec)$",
                          re.IGNORECASE)


class UnknownFormat(ValueError):
    """
    The file is neither a VOTable nor a FITS file samptwist understands.
    """


@dataclass
class HDU:
    """
    The header of one FITS HDU.
    """

    cards: Dict[str, str] = field(default_factory=dict)
    primary: bool = False

    def get(self, key: str, default: str = "") -> str:
        return self.cards.get(key, default)

    def number(self, key: str, default: int = 0) -> int:
        try:
            return int(float(self.cards.get(key, default)))
        except ValueError:
            return default

    @property
    def xtension(self) -> str:
        return "PRIMARY" if self.primary else self.get("XTENSION").upper()

    @property
    def axes(self) -> List[int]:
        return [self.number(f"NAXIS{i}") for i in range(1, self.number("NAXIS") + 1)]

    @property
    def image_axes(self) -> List[int]:
        """
        The image's axes (those of the compressed image for a tiled one).
        """
        if self.get("ZIMAGE") == "T":
            return [self.number(f"ZNAXIS{i}") for i in range(1, self.number("ZNAXIS") + 1)]
        return self.axes

    @property
    def data_size(self) -> int:
        """
        Bytes of data after the header (unpadded), FITS standard 4.4.1.
        """
        axes = self.axes
        if not axes:
            return 0
        count = 1
        start = 1 if (self.primary and axes[0] == 0) else 0  # random groups
        for n in axes[start:]:
            count *= n
        bits = abs(self.number("BITPIX", 8))
        return bits // 8 * self.number("GCOUNT", 1) * (self.number("PCOUNT", 0) + count)

    @property
    def has_image(self) -> bool:
        if self.xtension not in ("PRIMARY", "IMAGE"):
            return self.xtension == "BINTABLE" and self.get("ZIMAGE") == "T"
        return bool(self.axes) and all(n > 0 for n in self.axes)

    @property
    def is_table(self) -> bool:
        return self.xtension in ("BINTABLE", "TABLE", "A3DTABLE") and self.get("ZIMAGE") != "T"

    def column_names(self) -> List[str]:
        return [self.get(f"TTYPE{i}") for i in range(1, self.number("TFIELDS") + 1)]

    def looks_like_spectrum(self) -> bool:
        if self.get("VOCLASS").upper().startswith("SPECTRUM"):
            return True
        if self.has_image and self.xtension in ("PRIMARY", "IMAGE"):
            axes = self.axes
            return len(axes) == 1 and bool(_SPECTRAL_CTYPE.match(self.get("CTYPE1").upper()))
        if self.is_table:
            utypes = " ".join(
                self.get(f"TUTYPE{i}") for i in range(1, self.number("TFIELDS") + 1)
            ).lower()
            if "spec:" in utypes or "spectrum.data" in utypes or "ssa:" in utypes:
                return True
            names = self.column_names()
            return any(_WAVE_COLUMN.match(n) for n in names) and any(
                _FLUX_COLUMN.match(n) for n in names
            )
        return False


def _value(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith("'"):
        end = raw.find("'", 1)
        while end != -1 and raw[end + 1 : end + 2] == "'":  # '' is a quote
            end = raw.find("'", end + 2)
        text = raw[1:end] if end != -1 else raw[1:]
        return text.replace("''", "'").rstrip()
    return raw.split("/", 1)[0].strip()


def _read_header(f: IO[bytes], primary: bool) -> Optional[HDU]:
    hdu = HDU(primary=primary)
    while True:
        block = f.read(BLOCK)
        # A truncated block (the head of a remote file) still yields the
        # cards it holds.
        for n in range(0, len(block) - CARD + 1, CARD):
            card = block[n : n + CARD].decode("ascii", "replace")
            key = card[:8].strip()
            if key == "END":
                return hdu
            if card[8:10] == "= " and key not in hdu.cards:
                hdu.cards[key] = _value(card[10:])
        if len(block) < BLOCK:
            return hdu if hdu.cards else None


def read_fits_headers(f: IO[bytes]) -> List[HDU]:
    """
    @return: the headers of the HDUs of the FITS stream C{f}, in order.
    @raise UnknownFormat: if C{f} does not start like a FITS file.
    """
    hdus: List[HDU] = []
    while len(hdus) < MAX_HDUS:
        hdu = _read_header(f, primary=not hdus)
        if hdu is None:
            break
        if not hdus and hdu.get("SIMPLE") != "T":
            raise UnknownFormat("not a FITS file (no SIMPLE = T)")
        hdus.append(hdu)
        size = hdu.data_size
        if size:
            skip = (size + BLOCK - 1) // BLOCK * BLOCK
            f.seek(skip, 1)
    return hdus


def fits_mtype(hdus: List[HDU]) -> str:
    """
    @return: the MType for a FITS file with these HDUs: the first HDU holding
        data decides (a spectrum if it looks like one).
    """
    for hdu in hdus:
        if hdu.looks_like_spectrum():
            return SPECTRUM
        if hdu.has_image:
            return FITS_IMAGE
        if hdu.is_table:
            return FITS_TABLE
    raise UnknownFormat("FITS file without image or table data")


def votable_mtype(head: bytes) -> str:
    """
    @return: the MType for a VOTable whose beginning is C{head}.
    @raise UnknownFormat: if it is not a VOTable.
    """
    text = head.decode("utf-8", "replace")
    if not re.search(r"<(\w+:)?VOTABLE[\s>]", text):
        raise UnknownFormat("not a VOTable (no <VOTABLE> element)")
    utypes = " ".join(re.findall(r'utype\s*=\s*["\']([^"\']*)', text, re.IGNORECASE)).lower()
    if "spec:" in utypes or "ssa:" in utypes or "spectrum" in utypes:
        return SPECTRUM
    return VOTABLE


def _open(path: str) -> IO[bytes]:
    f: IO[bytes] = open(path, "rb")
    magic = f.read(2)
    f.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    return f


def sniff_bytes_format(head: bytes) -> str:
    """
    @return: C{"fits"}, C{"votable"} or C{""} for the first bytes of a file.
    """
    if head.startswith(b"SIMPLE  ="):
        return "fits"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<") and re.search(rb"<(\w+:)?VOTABLE[\s>]", head):
        return "votable"
    return ""


@dataclass
class Guess:
    """
    What a file is.

    @ivar mtype: the MType to load it with.
    @ivar format: C{"votable"} or C{"fits"}.
    @ivar detail: a few words on why, for the user.
    """

    mtype: str
    format: str
    detail: str

    @property
    def mime(self) -> str:
        return "application/x-votable+xml" if self.format == "votable" else "application/fits"

    def params(self, url: str, name: str) -> Dict[str, Any]:
        """
        @return: the message parameters for loading C{url} under C{name}.
        """
        params: Dict[str, Any] = {"url": url, "name": name}
        if self.mtype == SPECTRUM:
            params["meta"] = {"Access.Format": self.mime, "Access.Reference": url}
        return params


def guess_file(path: str) -> Guess:
    """
    @return: a L{Guess} for the local file C{path}.
    @raise UnknownFormat: if samptwist cannot tell.
    @raise OSError: if it cannot be read.
    """
    with _open(path) as f:
        head = f.read(VOTABLE_HEAD)
        kind = sniff_bytes_format(head)
        if kind == "votable":
            mtype = votable_mtype(head)
            return Guess(mtype, "votable", "VOTable" + (" spectrum" if mtype == SPECTRUM else ""))
        if kind != "fits":
            raise UnknownFormat("neither a VOTable nor a FITS file")
        f.seek(0)
        hdus = read_fits_headers(f)
    mtype = fits_mtype(hdus)
    return Guess(mtype, "fits", _describe(hdus, mtype))


def guess_bytes(head: bytes) -> Guess:
    """
    @return: a L{Guess} from the first bytes of a remote file (as many FITS
        headers as they hold are examined).
    @raise UnknownFormat: if that is not enough to tell.
    """
    if head[:2] == b"\x1f\x8b":
        try:
            head = gzip.decompress(head)
        except (OSError, EOFError):
            import zlib

            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
    kind = sniff_bytes_format(head)
    if kind == "votable":
        mtype = votable_mtype(head)
        return Guess(mtype, "votable", "VOTable")
    if kind == "fits":
        import io

        hdus = read_fits_headers(io.BytesIO(head))
        mtype = fits_mtype(hdus)
        return Guess(mtype, "fits", _describe(hdus, mtype))
    raise UnknownFormat("neither a VOTable nor a FITS file")


def _describe(hdus: List[HDU], mtype: str) -> str:
    kinds = []
    for hdu in hdus:
        if hdu.has_image:
            kinds.append(f"{hdu.xtension.lower()} image {'x'.join(map(str, hdu.image_axes))}")
        elif hdu.is_table:
            kinds.append(f"{hdu.xtension.lower()} {hdu.number('NAXIS2')} rows")
    what = {SPECTRUM: "FITS spectrum", FITS_IMAGE: "FITS image", FITS_TABLE: "FITS table"}[mtype]
    return f"{what} ({', '.join(kinds) or 'no data'})"

