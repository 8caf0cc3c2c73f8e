app_name = "urls_api"
urlpatterns: list = []
