app_name = "urls_v2"
urlpatterns: list = []
