// Asio, Asio SSL, Beast and Boost.URL are compiled once, here (separate compilation), so
// the rest of the project only parses their declarations.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
#include <boost/url/src.hpp>
