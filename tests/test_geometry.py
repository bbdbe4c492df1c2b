"""Earth/Moon geometry: tests that fail if the geometry is wrong."""

import os

import numpy as np
import pytest
from astropy.coordinates import CartesianRepresentation, SkyCoord
from conftest import SHARED_DATA, shared_file

from tess_backml import geometry
from tess_backml.constants import EARTH_RADIUS_KM, MOON_RADIUS_KM
from tess_backml.errors import EphemerisRangeError, FileFormatError, TessBackmlError

SECTOR, CAMERA = 4, 1


@pytest.fixture(scope="module")
def spice():
    return geometry.SpiceEphemeris("test")


@pytest.fixture(scope="module")
def times():
    return geometry.sector_ffi_times(SECTOR)[::24]


def direction_coord(vectors):
    rep = CartesianRepresentation(*np.asarray(vectors).T)
    return SkyCoord(rep, frame="icrs")


def test_pixel_angle_equals_astropy_separation(spice, times):
    rng = np.random.default_rng(1)
    rows = rng.uniform(1, 2048, 40)
    cols = rng.uniform(45, 2092, 40)
    for ccd in (1, 3):
        maps = geometry.pixel_maps(SECTOR, CAMERA, ccd, rows, cols, times[:8], ephemeris=spice)
        cam = geometry.CameraGeometry(SECTOR, CAMERA)
        sky = cam.wcs(ccd).pixel_to_world(cols - 1, rows - 1)
        jd = cam.spacecraft_time(times[:8], spice)
        vectors = spice.body_vectors(jd)
        for body in ("earth", "moon"):
            body_dirs = direction_coord(vectors.body(body))
            expected = np.array([sky.separation(b).deg for b in body_dirs])
            assert np.allclose(maps[f"{body}_angle"], expected, atol=2e-4)


def test_earth_angle_spans_the_ccd(spice, times):
    rows, cols = np.meshgrid(np.linspace(1, 2048, 16), np.linspace(45, 2092, 16), indexing="ij")
    maps = geometry.pixel_maps(SECTOR, CAMERA, 1, rows, cols, times, ephemeris=spice)
    spread = maps["earth_angle"].max(axis=(1, 2)) - maps["earth_angle"].min(axis=(1, 2))
    # A CCD covers ~12 x 12 degrees of sky: the Earth's angle must change by degrees across it.
    assert np.all(spread > 5)
    assert np.all(spread < 20)


def test_earth_distance_stays_on_the_tess_orbit(spice):
    table = geometry.camera_vectors(SECTOR, CAMERA, ephemeris=spice)
    distance = np.asarray(table["Earth_Distance"])
    assert distance.min() > 14 and distance.max() < 62
    assert distance.min() < 20, "perigee (~17 Earth radii) not reached"
    assert distance.max() > 55, "apogee (~59 Earth radii) not reached"


def test_angular_sizes_use_each_body_radius(spice, times):
    table = geometry.camera_vectors(SECTOR, CAMERA, times=times, ephemeris=spice)
    moon_km = np.asarray(table["Moon_Distance"]) * EARTH_RADIUS_KM
    expected = np.degrees(2 * np.arcsin(MOON_RADIUS_KM / moon_km))
    assert np.allclose(table["Moon_Angular_Size"], expected)
    # From 50-110 Earth radii the Moon is 0.28-0.65 deg across; with Earth's radius it would be ~3.7x that.
    assert 0.2 < np.min(table["Moon_Angular_Size"]) and np.max(table["Moon_Angular_Size"]) < 0.8
    earth_km = np.asarray(table["Earth_Distance"]) * EARTH_RADIUS_KM
    assert np.allclose(table["Earth_Angular_Size"], np.degrees(2 * np.arcsin(EARTH_RADIUS_KM / earth_km)))


def test_grid_maps_match_per_pixel_values(spice, times):
    rows, cols = np.meshgrid(np.arange(8, 2048, 256) + 0.5, np.arange(52, 2092, 256) + 0.5, indexing="ij")
    grid = geometry.pixel_maps(SECTOR, CAMERA, 2, rows, cols, times, ephemeris=spice, chunk_size=7)
    assert grid["earth_angle"].shape == (len(times),) + rows.shape
    for i, j in [(0, 0), (3, 5), (7, 7)]:
        single = geometry.pixel_maps(SECTOR, CAMERA, 2, rows[i, j], cols[i, j], times, ephemeris=spice)
        for key in geometry.MAP_KEYS:
            assert np.allclose(grid[key][:, i, j], single[key], atol=1e-4), key


def test_boresight_values_equal_camera_values_and_maps_are_continuous(spice, times):
    table = geometry.camera_vectors(SECTOR, CAMERA, times=times, ephemeris=spice)
    cam = geometry.CameraGeometry(SECTOR, CAMERA)
    vectors = spice.body_vectors(cam.spacecraft_time(times, spice))
    angle, azimuth = geometry.angle_and_azimuth(vectors.earth, cam.boresight[None], cam.reference)
    assert np.allclose(angle[:, 0], table["Earth_Camera_Angle"])
    assert np.allclose(azimuth[:, 0], table["Earth_Camera_Azimuth"])
    # The four CCDs' inner corners surround the boresight within ~0.5 deg: their maps
    # must agree with the camera value (and so with each other) to about that much.
    corners = {1: (2048, 2092), 2: (2048, 45), 3: (2048, 2092), 4: (2048, 45)}
    far = np.asarray(table["Earth_Camera_Angle"]) > 40  # azimuth is well defined away from the axis
    for ccd, (row, col) in corners.items():
        maps = geometry.pixel_maps(SECTOR, CAMERA, ccd, row, col, times, ephemeris=spice)
        assert np.allclose(maps["earth_angle"], table["Earth_Camera_Angle"], atol=0.7)
        delta = (maps["earth_azimuth"][far] - table["Earth_Camera_Azimuth"][far] + 180) % 360 - 180
        assert np.all(np.abs(delta) < 1.5)


def test_azimuth_follows_the_right_handed_convention():
    """azimuth = atan2(u.(b x r), u.r): a body toward r is at 0, toward b x r at 90."""
    b = np.array([0.0, 0.0, 1.0])
    r = np.array([1.0, 0.0, 0.0])
    bodies = np.array([[1, 0, 1], [0, 1, 1], [-1, 0, 1], [0, -1, 1]], dtype=float)
    angle, azimuth = geometry.angle_and_azimuth(bodies, b[None], r)
    assert np.allclose(angle[:, 0], 45)
    assert np.allclose(azimuth[:, 0], [0, 90, 180, 270])


def test_pixel_maps_are_chunked_consistently(spice, times):
    rows, cols = np.meshgrid([100.0, 1000.0], [200.0, 2000.0], indexing="ij")
    whole = geometry.pixel_maps(SECTOR, CAMERA, 4, rows, cols, times, ephemeris=spice, chunk_size=10_000)
    parts = geometry.pixel_maps(SECTOR, CAMERA, 4, rows, cols, times, ephemeris=spice, chunk_size=3)
    for key in geometry.MAP_KEYS:
        assert np.array_equal(whole[key], parts[key])


# --------------------------------------------------------------------------- HEASARC files
def test_heasarc_reader_gives_the_same_table_as_spice(spice):
    path = shared_file("real/TessVectors_S001_C4_FFI.csv")
    heasarc = geometry.read_tess_vectors(path)
    ours = geometry.camera_vectors(SECTOR, CAMERA, times=geometry.sector_ffi_times(SECTOR)[:5], ephemeris=spice)
    assert heasarc.colnames == ours.colnames == list(geometry.VECTOR_COLUMNS)
    for name in heasarc.colnames:
        assert heasarc[name].unit == ours[name].unit, name
        assert heasarc[name].dtype.kind == ours[name].dtype.kind == "f"
    raw = np.genfromtxt(path, delimiter=",", comments="#", skip_header=43, usecols=(2, 21), invalid_raise=False)
    assert len(heasarc) == len(raw) - 1  # the all-zero fill row is dropped
    assert heasarc.meta["SECTOR"] == 1 and heasarc.meta["CAMERA"] == 4
    assert np.all(heasarc["Earth_Distance"] > 10) and np.all(heasarc["Earth_Distance"] < 70)
    assert np.isclose(heasarc["MidTime"][-1], 1353.135994906187)
    assert np.all(np.diff(heasarc["MidTime"]) > 0)


def test_heasarc_reader_refuses_malformed_files(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("# not a vectors file\na,b,c\n1,2,3\n")
    with pytest.raises(FileFormatError, match="TESS Vectors"):
        geometry.read_tess_vectors(bad)
    short = tmp_path / "short.csv"
    text = shared_file("real/TessVectors_S001_C4_FFI.csv").read_text().splitlines()
    short.write_text("\n".join(text[:45] + [text[45][:40]]) + "\n")
    with pytest.raises(FileFormatError, match="fields"):
        geometry.read_tess_vectors(short)
    with pytest.raises(TessBackmlError, match="cannot read"):
        geometry.read_tess_vectors(tmp_path / "missing.csv")


# --------------------------------------------------------------------------- Horizons tables
def horizons_text(jd, xyz, centre="Earth (399)", units="KM-S", frame="ICRF", hashes=False, plain_columns=False):
    """A vector table laid out as JPL Horizons writes it (CSV, VEC_TABLE=3)."""
    header = [
        "*" * 79,
        "Ephemeris / API_USER Mon Nov 23 12:00:00 2026 Pasadena, USA      / Horizons",
        "*" * 79,
        "Target body name: TESS (spacecraft) (-95)        {source: TESS_merged}",
        f"Center body name: {centre}                     {{source: DE441}}",
        "Center-site name: BODY CENTER",
        "*" * 79,
        f"Output units    : {units}",
        "Output type     : GEOMETRIC cartesian states",
        f"Reference frame : {frame}",
        "*" * 79,
        "JDTDB, Calendar Date (TDB), X, Y, Z, LT, RG, RR,",
        "*" * 79,
        "$$SOE",
    ]
    rows = []
    for t, (x, y, z) in zip(jd, xyz):
        r = np.sqrt(x * x + y * y + z * z)
        rows.append(f"{t:.9f}, A.D. 2018-Oct-20 00:00:00.0000, {x:.16E}, {y:.16E}, {z:.16E}, {r / 3e5:.16E}, {r:.16E}, 0.0E+00,")
    footer = ["$$EOE", "*" * 79]
    if hashes:
        header = ["# " + line for line in header]
        footer = ["# " + line for line in footer]
        if plain_columns:
            header.append("JDTDB,TDB,X,Y,Z,LT,RG,RR,")
    return "\n".join(header + rows + footer) + "\n"


def _spice_table(spice, centre):
    import spiceypy

    jd = np.arange(2458405.0, 2458439.0, 1 / 24)
    geometry.SpiceEphemeris._load("test")
    et = (jd - 2451545.0) * 86400
    xyz, _ = spiceypy.spkpos("-95", et, "J2000", "NONE", centre)
    return jd, np.asarray(xyz)


# Earth-centred tables need astropy only for the Moon (~6 km from the kernels). With the
# barycentre as centre, astropy's built-in barycentric Earth differs from the kernels' by
# ~120 km, i.e. up to ~0.07 deg seen from perigee: hence the looser tolerance there.
@pytest.mark.parametrize(
    "centre_code, centre_name, units, scale, hashes, tolerance",
    [
        ("EARTH", "Earth (399)", "KM-S", 1.0, False, 0.01),
        ("SOLAR SYSTEM BARYCENTER", "Solar System Barycenter (0)", "AU-D", geometry.AU_KM, False, 0.1),
        ("EARTH", "Earth (399)", "KM-D", 1.0, True, 0.01),
    ],
)
def test_horizons_table_agrees_with_spice(tmp_path, spice, times, centre_code, centre_name, units, scale, hashes, tolerance):
    jd, xyz = _spice_table(spice, centre_code)
    path = tmp_path / "horizons.csv"
    path.write_text(horizons_text(jd, xyz / scale, centre=centre_name, units=units, hashes=hashes, plain_columns=hashes))
    horizons = geometry.HorizonsEphemeris(path)
    ours = geometry.camera_vectors(SECTOR, CAMERA, times=times, ephemeris=horizons)
    reference = geometry.camera_vectors(SECTOR, CAMERA, times=times, ephemeris=spice)
    for name in ("Earth_Camera_Angle", "Moon_Camera_Angle", "Earth_Distance", "Moon_Distance"):
        assert np.allclose(ours[name], reference[name], atol=tolerance, rtol=1e-4), name
    for name in ("Earth_Camera_Azimuth", "Moon_Camera_Azimuth"):
        delta = (np.asarray(ours[name]) - reference[name] + 180) % 360 - 180
        assert np.all(np.abs(delta) < 2 * tolerance), name


def test_horizons_ecliptic_table_is_rotated_to_equatorial(tmp_path, spice, times):
    jd, xyz = _spice_table(spice, "EARTH")
    eps = np.deg2rad(84381.406 / 3600)
    to_ecliptic = np.array([[1, 0, 0], [0, np.cos(eps), np.sin(eps)], [0, -np.sin(eps), np.cos(eps)]])
    path = tmp_path / "ecliptic.csv"
    path.write_text(horizons_text(jd, xyz @ to_ecliptic.T, frame="Ecliptic of J2000.0"))
    ours = geometry.camera_vectors(SECTOR, CAMERA, times=times, ephemeris=geometry.HorizonsEphemeris(path))
    reference = geometry.camera_vectors(SECTOR, CAMERA, times=times, ephemeris=spice)
    assert np.allclose(ours["Earth_Camera_Angle"], reference["Earth_Camera_Angle"], atol=1e-3)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.replace("$$SOE", "SOE"), "SOE"),
        (lambda t: t.replace("Earth (399)", "Io (501)"), "centre"),
        (lambda t: t.replace("KM-S", "FURLONGS"), "units"),
        (lambda t: t.replace("TESS (spacecraft) (-95)", "Mars (499)"), "not TESS"),
        (lambda t: t.replace(": ICRF", ": Body Equator"), "body equator"),
        (lambda t: t.replace("JDTDB, Calendar Date (TDB), X, Y, Z", "JDTDB, Calendar Date (TDB), A, B, C"), "lack"),
        (lambda t: t.replace("E+0", "Q+0", 1), "numeric"),
    ],
)
def test_horizons_reader_refuses_what_it_cannot_interpret(tmp_path, spice, mutate, message):
    jd, xyz = _spice_table(spice, "EARTH")
    path = tmp_path / "bad.csv"
    path.write_text(mutate(horizons_text(jd[:10], xyz[:10])))
    with pytest.raises(FileFormatError, match=message):
        geometry.HorizonsEphemeris(path)


def test_horizons_later_layout_is_read_like_the_first(tmp_path, spice):
    """Horizons' later layout: every header line (``$$SOE`` too) starts with ``# ``, no
    ``$$EOE``, and a short column line without VX, VY, VZ above rows that hold them."""
    jd, xyz = _spice_table(spice, "EARTH")
    first = tmp_path / "first.csv"
    first.write_text(horizons_text(jd, xyz))
    text = horizons_text(jd, xyz).replace("X, Y, Z, LT", "X, Y, Z, VX, VY, VZ, LT")
    head, _, body = text.partition("$$SOE\n")
    rows = []
    for line in body.splitlines():
        if line.startswith("$$EOE"):
            break
        fields = line.split(", ")
        rows.append(", ".join(fields[:5] + ["9.9E+09", "-9.9E+09", "9.9E+09"] + fields[5:]))
    later = tmp_path / "later.csv"
    later.write_text("".join("# " + line + "\n" for line in (head + "$$SOE").splitlines())
                     + "JDTDB,Calendar Date (TDB),X,Y,Z,LT,RG,RR,\n" + "\n".join(rows) + "\n")
    a, b = geometry.HorizonsEphemeris(first), geometry.HorizonsEphemeris(later)
    np.testing.assert_array_equal(a.jd_tdb, b.jd_tdb)
    np.testing.assert_allclose(a.position_km, b.position_km, rtol=1e-12)


def test_the_shared_2026_table_is_read():
    table = geometry.HorizonsEphemeris(shared_file("ephemeris-2026/20260401_tess_ephem.csv"))
    assert table.btjd_range == pytest.approx((4131.5, 4698.5))
    # TESS is about 1 au from the barycentre: the columns read are X, Y, Z, not the velocities
    assert np.all(np.abs(np.linalg.norm(table.position_km, axis=1) / geometry.AU_KM - 1) < 0.03)


def test_times_outside_an_ephemeris_say_what_is_covered(tmp_path, spice):
    with pytest.raises(EphemerisRangeError, match=r"outside the span.*BTJD 1401\.\d+ to 1439\.\d+.*Horizons"):
        spice.body_vectors(np.array([2458330.0]))
    jd, xyz = _spice_table(spice, "EARTH")
    path = tmp_path / "short.csv"
    path.write_text(horizons_text(jd[:48], xyz[:48]))
    horizons = geometry.HorizonsEphemeris(path)
    with pytest.raises(EphemerisRangeError, match="outside the span of the Horizons table"):
        geometry.camera_vectors(SECTOR, CAMERA, times=[1430.0], ephemeris=horizons)


def test_bad_sector_camera_ccd_and_times():
    with pytest.raises(TessBackmlError, match="sector 0"):
        geometry.CameraGeometry(0, 1)
    with pytest.raises(TessBackmlError, match="camera"):
        geometry.CameraGeometry(4, 5)
    with pytest.raises(TessBackmlError, match="CCD"):
        geometry.pixel_maps(4, 1, 7, 10, 50, [1420.0])
    with pytest.raises(TessBackmlError, match="NaN"):
        geometry.to_btjd([1420.0, np.nan])
    with pytest.raises(TessBackmlError, match="rows must lie on the CCD"):
        geometry.CameraGeometry(4, 1).pixel_directions(1, -50, 100)


def test_jd_and_btjd_times_give_the_same_table(spice):
    btjd = np.array([1415.0, 1425.5])
    a = geometry.camera_vectors(SECTOR, CAMERA, times=btjd, ephemeris=spice)
    b = geometry.camera_vectors(SECTOR, CAMERA, times=btjd + 2457000, ephemeris=spice)
    assert np.allclose(a["Earth_Camera_Angle"], b["Earth_Camera_Angle"])
    # MidTime is the spacecraft time: BTJD minus a barycentric correction of up to ~8.3 minutes.
    assert np.all(np.abs(a["MidTime"] - a["BTJD"]) < 8.4 / 1440)
    assert np.all(np.abs(a["MidTime"] - a["BTJD"]) > 0)


@pytest.mark.slow
def test_cached_wcs_equals_tesswcs():
    import tesswcs

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 2136, 200), rng.uniform(0, 2078, 200)
    cached = geometry.sector_wcs(SECTOR)
    for camera, ccd in [(1, 1), (2, 3), (4, 4)]:
        fresh = tesswcs.WCS.from_sector(SECTOR, camera, ccd)
        assert np.allclose(fresh.all_pix2world(x, y, 0), cached[camera, ccd].all_pix2world(x, y, 0), atol=1e-10)


def test_camera_angles_agree_with_the_mission_tess_vectors_within_a_tenth_of_a_degree():
    """Sector 1 camera 4, at the TESS Vectors file's own spacecraft times, with the real
    Horizons ephemeris: Earth and Moon angles from the boresight within 0.1 deg (median
    well below), azimuths within 0.1 deg where the body is more than 5 deg off-axis."""
    vectors = geometry.read_tess_vectors(shared_file("real/TessVectors_S001_C4_FFI.csv"))
    ephemeris = geometry.HorizonsEphemeris(shared_file("ephemeris/20180720_tess_ephem.csv"))
    camera = geometry.CameraGeometry(1, 4)
    bodies = ephemeris.body_vectors(np.asarray(vectors["MidTime"]) + 2457000.0)
    for body in ("earth", "moon"):
        angle, azimuth = geometry.angle_and_azimuth(bodies.body(body), camera.boresight[None], camera.reference)
        name = body.capitalize()
        angle_error = np.abs(angle[:, 0] - vectors[f"{name}_Camera_Angle"])
        azimuth_error = np.abs((azimuth[:, 0] - vectors[f"{name}_Camera_Azimuth"] + 180) % 360 - 180)
        assert angle_error.max() < 0.1 and np.median(angle_error) < 0.01, body
        assert azimuth_error[angle[:, 0] > 5].max() < 0.1, body


def test_a_directory_of_horizons_tables_uses_the_one_covering_the_times(tmp_path, monkeypatch):
    folder = shared_file("ephemeris/20190101_tess_ephem.csv").parent
    directory = geometry.load_ephemeris(str(folder))
    assert isinstance(directory, geometry.HorizonsDirectory) and len(directory.tables) == 8
    times = [1630.0, 1640.5]  # Sector 12: only the second table covers it
    single = geometry.HorizonsEphemeris(folder / "20190101_tess_ephem.csv")
    np.testing.assert_array_equal(
        geometry.camera_vectors(12, 2, times=times, ephemeris=directory)["Earth_Camera_Angle"],
        geometry.camera_vectors(12, 2, times=times, ephemeris=single)["Earth_Camera_Angle"],
    )
    with pytest.raises(EphemerisRangeError, match="covered by no single table.*1270.5-1483.5"):
        geometry.camera_vectors(99, 1, ephemeris=directory)
    # the environment variable sets the default
    monkeypatch.setenv("TESS_BACKML_EPHEMERIS", str(folder))
    assert isinstance(geometry.load_ephemeris(None), geometry.HorizonsDirectory)
    assert len(geometry.camera_vectors(30, 1, times=[2120.0])) == 1


def test_a_directory_without_tables_and_a_missing_ephemeris_are_clear_errors(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TessBackmlError, match="holds no JPL Horizons table"):
        geometry.load_ephemeris(str(tmp_path))
    with pytest.raises(TessBackmlError, match="no ephemeris"):
        geometry.load_ephemeris(str(tmp_path / "missing.csv"))


@pytest.mark.parametrize("name", sorted(p.name for p in (SHARED_DATA / "ephemeris").glob("*.csv")) or ["none"])
def test_per_pixel_maps_for_one_sector_of_each_table(name):
    """Each shared Horizons table gives real per-pixel maps of a sector it covers."""
    table = geometry.HorizonsEphemeris(shared_file(f"ephemeris/{name}"))
    start, stop = table.btjd_range
    sector = next(s for s in geometry.valid_sectors() if start + 1 < geometry.sector_time_range(s)[0]
                  and geometry.sector_time_range(s)[1] < stop - 1)
    times = np.linspace(*geometry.sector_time_range(sector), 40)
    rows, cols = np.meshgrid(np.arange(8, 2048, 256) + 0.5, np.arange(52, 2092, 256) + 0.5, indexing="ij")
    maps = geometry.pixel_maps(sector, 1, 1, rows, cols, times, ephemeris=table)
    assert maps["earth_angle"].shape == (40, 8, 8)
    assert all(np.all(np.isfinite(value)) for value in maps.values())
    spread = maps["earth_angle"].max(axis=(1, 2)) - maps["earth_angle"].min(axis=(1, 2))
    assert np.all((spread > 5) & (spread < 20))  # a 12-degree CCD seen from far away
    assert 0.3 < maps["earth_angular_size"].min() and maps["earth_angular_size"].max() < 12


def _angle_deg(a, b):
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=1), np.einsum("ij,ij->i", a, b)))


def test_the_shipped_ephemeris_matches_every_horizons_table_it_was_built_from():
    from tess_backml.geometry.ephemeris.shipped import SHIPPED_FILE

    shipped = geometry.ShippedEphemeris()
    assert os.path.getsize(SHIPPED_FILE) < 5e6  # what it adds to the wheel
    shared_file("ephemeris-2026/20260401_tess_ephem.csv")  # skips without the shared data
    tables = [t for folder in ("ephemeris", "ephemeris-2026") for t in geometry.HorizonsDirectory(SHARED_DATA / folder).tables]
    assert sorted(shipped.sources) == sorted(os.path.basename(t.path) for t in tables)
    by_name = {os.path.basename(t.path): t for t in tables}
    rng = np.random.default_rng(4)
    for start, stop, _, name in shipped.segments:  # where tables overlap, the latest is used
        table = by_name[name]
        jd = np.sort(rng.uniform(start, stop, 3000))  # between the rows, where the splines differ most
        assert set(shipped.source_of(jd[1:-1])) == {name}
        ours, theirs = shipped.body_vectors(jd), table.body_vectors(jd)
        for body in ("earth", "moon"):
            assert _angle_deg(ours.body(body), theirs.body(body)).max() < 0.001, (name, body)
            np.testing.assert_allclose(np.linalg.norm(ours.body(body), axis=1), np.linalg.norm(theirs.body(body), axis=1),
                                       rtol=1e-4)
    # every sector of the tables' span is covered, whole
    pointings = geometry.sector_pointings()
    for sector, begin, end in zip(pointings["Sector"], pointings["Start"], pointings["End"]):
        if 1 <= sector <= 98 or 103 <= sector <= 122:
            assert shipped.covers([begin, end]), sector


def test_every_command_finds_real_geometry_offline_without_an_option(monkeypatch, tmp_path, capsys):
    from tess_backml.cli import main
    from tess_backml.geometry.ephemeris import EPHEMERIS_ENVIRONMENT

    monkeypatch.delenv(EPHEMERIS_ENVIRONMENT, raising=False)
    for sector in (1, 30, 60, 98, 110):
        assert main(["-q", "vectors", "--sector", str(sector), "--camera", "2", "--out", str(tmp_path / "v.csv")]) == 0
    assert main(["-q", "vectors", "--sector", "100", "--camera", "2", "--out", str(tmp_path / "v100.csv")]) == 2
    error = capsys.readouterr().err
    assert "BTJD 1270.5-4071.5, 4131.5-4698.5" in error and "--ephemeris horizons" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "v100.csv").exists()
    # a real cutout of a sector beyond the test kernels, corrected by the default model with no option
    cutout = shared_file("real/tess-s0012-2-1_tesscut_1x1.fits")
    assert main(["-q", "correct", str(cutout), "--model", "default", "--out", str(tmp_path / "c.fits")]) == 0
