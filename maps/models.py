from piccolo.columns import JSON, Boolean, Serial, Varchar
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
