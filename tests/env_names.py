"""The SHOUHU_* environment names the code reads: the shared Settings, and notifications' own
(its agencies, channels and agency key), so deployment files can be checked against them."""

from services.notifications.config import NotificationsConfig
from shared.settings import Settings

KNOWN_SHOUHU_VARS = {f"SHOUHU_{name.upper()}" for name in Settings.model_fields} | {
    f"SHOUHU_NOTIFICATIONS_{name.upper()}" for name in NotificationsConfig.model_fields if name != "env"
}
