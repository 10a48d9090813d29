from services.reporting.app import SPEC
from shared.service import serve

serve(SPEC)
