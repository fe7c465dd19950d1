"""Flask extensions, created unbound and bound to the app in create_app()."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

# Objects keep their values after a commit: reading them to answer a request must not go back to the
# database, which may have gone away in between (see service_base.commit).
db = SQLAlchemy(session_options={"expire_on_commit": False})
migrate = Migrate()
csrf = CSRFProtect()
