from services.visits.app import SPEC
from shared.service import serve

serve(SPEC)
