"""Page parameters from the URL, so every view has a link (alert annotations point at them):
``/models/<name>?from=…&to=…&window=1h&segment=region%3DEU&feature=age`` (and the heatmap's
``features=`` name filter and ``page=``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode

# The address bar as Dash Pages keeps it (the dcc.Location inside ``dash.page_container``): pages
# read their query from it and write their controls into it, and Dash Pages builds the page anew
# for every address written (a second Location would change the address without telling it).
LOCATION = "_pages_location"

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
MAX_FILTER = 128  # a feature name's longest


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ModelParams:
    start: datetime
    end: datetime
    window: str | None
    segment: str
    feature: str | None
    metric: str | None
    range_name: str  # a preset ('24h', '7d', '30d') or 'custom'
    features: str = ""  # the heatmap's filter: feature names holding this
    page: int = 1  # the heatmap's page
    order: str = "drift"  # the heatmap's order: "drift", or "importance" (importance times drift)

    @classmethod
    def from_search(cls, search: str | None, now: datetime | None = None) -> ModelParams:
        q = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}
        now = now or datetime.now(UTC)
        end = _when(q.get("to"))
        start = _when(q.get("from"))
        name = q.get("range", "")
        if name in RANGES or not (start and end):
            name = name if name in RANGES else "7d"
            end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            start = end - RANGES[name]
        else:
            name = "custom"
        assert start is not None and end is not None
        page = q.get("page", "1")
        return cls(
            start,
            end,
            q.get("window"),
            q.get("segment", ""),
            q.get("feature"),
            q.get("metric"),
            name,
            q.get("features", "")[:MAX_FILTER],
            int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1,
            "importance" if q.get("order") == "importance" else "drift",
        )

    def search(self, **changes: str | None) -> str:
        q: dict[str, str] = {"window": self.window or "", "segment": self.segment, "features": self.features}
        if self.page > 1:
            q["page"] = str(self.page)
        if self.order != "drift":
            q["order"] = self.order
        if self.range_name == "custom":
            q.update({"from": self.start.isoformat(), "to": self.end.isoformat()})
        else:
            q["range"] = self.range_name
        for k, v in changes.items():
            if k == "range" and v in RANGES:
                q.pop("from", None)
                q.pop("to", None)
            q[k] = v or ""
        return "?" + urlencode({k: v for k, v in q.items() if v})
