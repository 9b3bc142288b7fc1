"""The monitoring desk in a browser: server-rendered pages (Jinja2 templates, inline SVG
timelines, a little plain JavaScript for the live board) over the same views and store the
API uses. ``pages`` owns the routes, ``session`` the login cookie and CSRF checks for forms,
``context`` what each page shows about an alert (person, household, visit window),
``timeline`` the SVG drawing. Every asset ships in the package; nothing is fetched from the
internet."""
