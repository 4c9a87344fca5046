from piccolo.columns import JSON, Boolean, DoublePrecision, ForeignKey, Serial, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table as Model


class District(Model, tablename="district"):
    id: Serial
    slug = Varchar(length=64, unique=True)
    name = Varchar(length=120)
    postcode = Varchar(length=5)
    boundary = JSON()  # a GeoJSON geometry (Polygon or MultiPolygon), WGS 84
    # Demo boundaries are drawn by hand; official QPV contours replace them on import.
    approximate = Boolean(default=True)
    source = Varchar(length=200, default="")


class Place(Model, tablename="named_place"):
    """A place residents name ("the tour G", "the bus stop"), to put a proposal on the map
    without a map: a choice in a list."""

    id: Serial
    district = ForeignKey(District, null=False, on_delete=OnDelete.cascade)
    name = Varchar(length=120)
    latitude = DoublePrecision()
    longitude = DoublePrecision()
