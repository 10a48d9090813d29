from services.registry.app import SPEC
from shared.service import serve

serve(SPEC)
