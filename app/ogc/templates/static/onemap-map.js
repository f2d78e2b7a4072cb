/* Small OpenLayers maps for the OGC API HTML pages (OpenLayers is served locally from the
   MapProxy package's static files; no tiles from the Internet). */
var oneMap = (function () {
  function makeMap(target, source) {
    var map = new ol.Map({
      target: target,
      layers: [new ol.layer.Vector({
        source: source,
        style: new ol.style.Style({
          stroke: new ol.style.Stroke({color: '#c0392b', width: 1.5}),
          fill: new ol.style.Fill({color: 'rgba(192, 57, 43, 0.15)'}),
          image: new ol.style.Circle({radius: 5, fill: new ol.style.Fill({color: '#c0392b'})})
        })
      })],
      view: new ol.View({center: ol.proj.fromLonLat([126.0, 43.6]), zoom: 6})
    });
    if (source.getFeatures().length) {
      map.getView().fit(source.getExtent(), {padding: [20, 20, 20, 20], maxZoom: 16});
    }
    return map;
  }
  function features(target, list, options) {
    var format = new ol.format.GeoJSON();
    var source = new ol.source.Vector({
      features: format.readFeatures({type: 'FeatureCollection', features: list.filter(function (f) { return f.geometry; })},
                                    {featureProjection: 'EPSG:3857'})
    });
    var map = makeMap(target, source);
    if (options.itemsPath) {
      map.on('singleclick', function (e) {
        map.forEachFeatureAtPixel(e.pixel, function (f) {
          window.location.href = options.itemsPath + '/' + f.getId() + '?f=html';
          return true;
        });
      });
    }
    return map;
  }
  function extent(target, bbox) {
    var polygon = ol.geom.Polygon.fromExtent(bbox).transform('EPSG:4326', 'EPSG:3857');
    return makeMap(target, new ol.source.Vector({features: [new ol.Feature(polygon)]}));
  }
  return {features: features, extent: extent};
})();
