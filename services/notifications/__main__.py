from services.notifications.app import SPEC
from shared.service import serve

serve(SPEC)
