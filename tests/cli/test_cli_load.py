"""
``samptwist load``: MType detection on small VOTable and FITS files written
with astropy (MT-TABLE-1/2, MT-IMG-1, MT-SPEC-1), then end to end to a pyvo.samp
client that loads tables and images and refuses spectra; URLs fetched over HTTP.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading

import peers
import pytest

from samptwist.cli import sniff

from .conftest import ok, one_line_error, run_cli


@pytest.fixture
def files(tmp_path):
    np = pytest.importorskip("numpy")
    from astropy.io import fits
    from astropy.table import Table

    t = Table({"ra": [1.0, 2.0], "dec": [3.0, 4.0]})
    out = {}
    out["table.vot"] = tmp_path / "table.vot"
    t.write(out["table.vot"], format="votable")
    out["table.fits"] = tmp_path / "table.fits"
    t.write(out["table.fits"])
    out["image.fits"] = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((8, 6), dtype="f4")).writeto(out["image.fits"])
    out["ext-image.fits"] = tmp_path / "ext-image.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((4, 4)))]).writeto(
        out["ext-image.fits"])
    out["tiled.fits"] = tmp_path / "tiled.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(np.zeros((16, 16), dtype="f4"))]
                 ).writeto(out["tiled.fits"])
    out["spectrum.fits"] = tmp_path / "spectrum.fits"
    Table({"WAVELENGTH": [4000.0, 5000.0], "FLUX": [1.0, 2.0]}).write(out["spectrum.fits"])
    out["spectrum1d.fits"] = tmp_path / "spectrum1d.fits"
    h = fits.PrimaryHDU(np.zeros(50))
    h.header["CTYPE1"] = "WAVE"
    h.writeto(out["spectrum1d.fits"])
    out["notes.txt"] = tmp_path / "notes.txt"
    out["notes.txt"].write_text("just text\n")
    return out


EXPECTED = {
    "table.vot": sniff.VOTABLE,
    "table.fits": sniff.FITS_TABLE,
    "image.fits": sniff.FITS_IMAGE,
    "ext-image.fits": sniff.FITS_IMAGE,
    "tiled.fits": sniff.FITS_IMAGE,
    "spectrum.fits": sniff.SPECTRUM,
    "spectrum1d.fits": sniff.SPECTRUM,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detection(files, name):
    assert sniff.guess_file(str(files[name])).mtype == EXPECTED[name]
    # The head of the file is enough, as for URLs.
    assert sniff.guess_bytes(files[name].read_bytes()[:64 * 1024]).mtype == EXPECTED[name]


def test_gzipped_fits(files, tmp_path):
    import gzip

    gz = tmp_path / "image.fits.gz"
    gz.write_bytes(gzip.compress(files["image.fits"].read_bytes()))
    assert sniff.guess_file(str(gz)).mtype == sniff.FITS_IMAGE


def test_unknown_format(files):
    with pytest.raises(sniff.UnknownFormat):
        sniff.guess_file(str(files["notes.txt"]))


@contextlib.contextmanager
def serve(root):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.interop
def test_load_end_to_end(our_hub, files, make_peer, tmp_path):
    """Paths become file: URLs (MT-GEN-2); who accepted is reported; a refusal,
    nobody subscribed and an unreadable file give one line and status 1."""
    viewer = make_peer(our_hub, "viewer", calls={
        sniff.VOTABLE: ok(), sniff.FITS_TABLE: ok(), sniff.FITS_IMAGE: ok(),
        sniff.SPECTRUM: {"samp.status": "samp.error",
                         "samp.error": {"samp.errortxt": "no spectra here"}},
    })
    cp = run_cli(our_hub.env, "load", str(files["table.vot"]), str(files["image.fits"]),
                 str(files["table.fits"]))
    assert cp.returncode == 0, peers.describe_run(cp, our_hub)
    got = [viewer.inbox.wait_for(lambda m, t=t: m[2] == t, what=t)
           for t in (sniff.VOTABLE, sniff.FITS_IMAGE, sniff.FITS_TABLE)]
    assert got[0][3] == {"url": files["table.vot"].as_uri(), "name": "table.vot"}
    assert got[1][3]["url"] == files["image.fits"].as_uri()
    assert f"viewer ({viewer.id}): accepted" in cp.stdout
    assert "-> image.load.fits" in cp.stdout and "-> table.load.fits" in cp.stdout

    cp = run_cli(our_hub.env, "load", str(files["spectrum.fits"]), "--to", "viewer")
    line = one_line_error(cp)
    assert "viewer refused: no spectra here" in line
    params = viewer.inbox.wait_for(lambda m: m[2] == sniff.SPECTRUM, what="spectrum")[3]
    assert params["meta"]["Access.Format"] == "application/fits"

    with serve(tmp_path) as base:
        cp = run_cli(our_hub.env, "load", base + "table.fits", "--json")
        assert cp.returncode == 0, peers.describe_run(cp, our_hub)
        assert viewer.inbox.wait_for(lambda m: m[3].get("url") == base + "table.fits",
                                     what="URL load")[2] == sniff.FITS_TABLE

    line = one_line_error(run_cli(our_hub.env, "load", str(files["notes.txt"])))
    assert "cannot tell what it is" in line and "--mtype" in line
    line = one_line_error(run_cli(our_hub.env, "load", str(tmp_path / "missing.fits")))
    assert "no such file" in line
    viewer.close()
    line = one_line_error(run_cli(our_hub.env, "load", str(files["table.vot"])))
    assert "no client loads table.load.votable" in line
